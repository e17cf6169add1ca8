-- Shared by the wrk scripts of scripts/bench.py: per-thread status counts and a one-line JSON report.
-- A script sets `make_request(n)` (n counts from 1 in each thread) and may set `counts_statuses = true`.
local threads = {}
local thread_index = 0

function setup(thread)
  thread_index = thread_index + 1
  thread:set("tid", thread_index)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  statuses = {}
end

function request()
  n = n + 1
  return make_request(n)
end

function response(status, headers, body)
  if counts_statuses then
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    if s then
      for code, count in pairs(s) do merged[code] = (merged[code] or 0) + count end
    end
  end
  local parts = {}
  for code, count in pairs(merged) do table.insert(parts, string.format('"%d":%d', code, count)) end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout, table.concat(parts, ",")))
end
