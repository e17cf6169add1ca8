-- Wrapp webhooks with unique bodies (so each one is stored, none a duplicate) for the tenant BENCH_EXTERNAL_ID,
-- posted to wrk's URL (/webhooks/wrapp/{token}). BENCH_RUN makes bodies unique across runs too.
package.path = "scripts/bench/?.lua;" .. package.path
require("common")
counts_statuses = true
local external_id = os.getenv("BENCH_EXTERNAL_ID")
local run = os.getenv("BENCH_RUN") or "0"
function make_request(n)
  local body = string.format('{"partner_user_id":"%s","event":"bench","seq":"%s-%d-%d"}', external_id, run, tid, n)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
