-- wrk-report.lua -- prints wrk's summary as one machine-readable line.
-- Latencies are in microseconds; "status" counts non-2xx/3xx answers.
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d duration_us=%d rps=%.0f p50_us=%d p99_us=%d "
            .. "non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
        summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
        latency:percentile(50), latency:percentile(99),
        e.status, e.connect, e.read, e.write, e.timeout))
end
