-- wrk script: one point read by primary key per request, a different key each time (spread over
-- 1..rows, distinct per thread). Args: rows (keys 1..rows exist in table kv). POSTs JSON to
-- ha's HTTP API or the baseline server.
-- Prints "RESULT requests errors duration_us p50_us p99_us" at the end; an error is a non-200
-- answer.
local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  rows = tonumber(args[1] or "10000")
  n = tid * 7919
  bad = 0
end

function request()
  n = n + 1
  return wrk.format("POST", "/", { ["Content-Type"] = "application/json" },
    '{"sql":"SELECT id, v FROM kv WHERE id = ?","params":[' .. (n % rows + 1) .. ']}')
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local errors = 0
  for _, t in ipairs(threads) do
    errors = errors + t:get("bad")
  end
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, errors,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
