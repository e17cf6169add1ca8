-- GET of a fixed path (wrk's URL), with the partner key from BENCH_KEY.
package.path = "scripts/bench/?.lua;" .. package.path
require("common")
counts_statuses = true
local key = os.getenv("BENCH_KEY")
function make_request(n)
  local headers = {}
  if key then headers["Authorization"] = "Bearer " .. key end
  return wrk.format("GET", nil, headers)
end
