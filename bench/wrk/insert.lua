-- wrk script: one single-row write per request, a distinct key per request (unique per wrk
-- process, thread and request). Args: mode ("ha" = POST JSON to ha's HTTP API or the baseline
-- server, "dqlite" = PUT /<key> to dqlite-demo), prefix (unique per wrk process).
-- Prints "RESULT requests errors duration_us p50_us p99_us" at the end; an error is a non-200
-- answer or a dqlite-demo body starting with "Error:" (it answers 200 on failures).
local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "ha"
  prefix = (args[2] or "k") .. "-" .. tid
  n = 0
  bad = 0
end

function request()
  n = n + 1
  local key = prefix .. "-" .. n
  if mode == "dqlite" then
    return wrk.format("PUT", "/" .. key, nil, "value")
  end
  return wrk.format("POST", "/", { ["Content-Type"] = "application/json" },
    '{"sql":"INSERT OR REPLACE INTO model(key, value) VALUES (?, ?)","params":["' .. key ..
    '","value"]}')
end

function response(status, headers, body)
  if status ~= 200 or string.sub(body, 1, 6) == "Error:" then
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
