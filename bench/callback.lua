-- wrk script: every request uses its own pre-minted callback path (a state is single use), and
-- the run reports latency percentiles in a line the driver parses.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file = os.getenv("BENCH_PATHS")
  local nthreads = tonumber(os.getenv("BENCH_THREADS"))
  paths = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == tid then table.insert(paths, line) end
    i = i + 1
  end
  idx = 0
  exhausted = 0
end

function request()
  idx = idx + 1
  if idx > #paths then
    exhausted = exhausted + 1
    idx = 1
  end
  return wrk.format("GET", paths[idx])
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors_status=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, summary.errors.status, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
