-- Shared by the case scripts of bench/http_bench.py: the bearer token, a file of ids, a
-- number per thread, and the summary that the harness reads (one line starting "BENCH ").
local common = {}

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

-- The bearer token is the first argument after `--`.
function common.authorize(args)
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  wrk.headers["Content-Type"] = "application/json"
end

-- The lines of a file (record ids), and where this thread starts in them, so that
-- threads ask for different records.
function common.ids(path)
  local ids = {}
  for line in io.lines(path) do
    if line ~= "" then
      ids[#ids + 1] = line
    end
  end
  local start = math.floor((thread_number - 1) * #ids / 2)
  return ids, start
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "non_2xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout))
end

return common
