-- wrk script for bench/gateway.sh: POST a small non-streamed chat completion,
-- with "Authorization: Bearer $BENCH_TOKEN" when that variable is set, and
-- print one machine-readable RESULT line (latencies in microseconds).
wrk.method = "POST"
wrk.body = '{"model":"bench","messages":[{"role":"user","content":"Say hi"}],"max_tokens":8}'
wrk.headers["Content-Type"] = "application/json"

local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d rps=%.0f p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
