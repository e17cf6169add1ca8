-- GET of wrk's URL followed by an id drawn at random from the file BENCH_IDS (one per line), with BENCH_KEY.
package.path = "scripts/bench/?.lua;" .. package.path
require("common")
counts_statuses = true
local key = os.getenv("BENCH_KEY")
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do table.insert(ids, line) end
function init(args)
  n = 0
  statuses = {}
  math.randomseed(os.time() + (tid or 0))
end
function make_request(n)
  local path = wrk.path .. ids[math.random(#ids)]
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. key})
end
