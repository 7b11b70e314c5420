-- bench.lua - the wrk request for tests/bench/run.sh: a non-streaming chat
-- completion with a ~1 KB prompt, the same body for every target; only the
-- Authorization header differs (BENCH_AUTH: the mock's key or a Tollgate
-- key). done() prints one machine-readable line, latencies in µs.
local auth = os.getenv("BENCH_AUTH") or ""
local prompt = string.rep("The quick brown fox jumps over the lazy dog. ", 23)

wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. auth
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"'
  .. prompt .. '"}]}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d rps=%.1f p50_us=%.1f p99_us=%.1f " ..
    "mean_us=%.1f max_us=%.1f non2xx=%d connect=%d read=%d write=%d " ..
    "timeout=%d\n",
    summary.requests, summary.duration,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.mean,
    latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
