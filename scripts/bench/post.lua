-- POST with an empty body (Content-Length: 0) to a fixed path (wrk's URL), with the partner key from BENCH_KEY.
package.path = "scripts/bench/?.lua;" .. package.path
require("common")
counts_statuses = true
local key = os.getenv("BENCH_KEY")
function make_request(n)
  return wrk.format("POST", nil, {["Authorization"] = "Bearer " .. key}, "")
end
