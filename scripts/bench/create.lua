-- POST /v1/tenants for new Wrapp customers, each with its own external_id (BENCH_RUN, thread, counter).
package.path = "scripts/bench/?.lua;" .. package.path
require("common")
counts_statuses = true
local key = os.getenv("BENCH_KEY")
local run = os.getenv("BENCH_RUN") or "0"
function make_request(n)
  local id = string.format("bench-%s-%d-%d", run, tid, n)
  local body = string.format('{"provider":"wrapp","external_id":"%s","profile":{"email":"%s@example.com","phone":"+302101234567"}}', id, id)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, body)
end
