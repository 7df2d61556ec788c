-- Prints wrk's summary as one JSON line prefixed with WRK_JSON, so the harness reads numbers
-- instead of parsing wrk's human text (units vary there: us/ms/s, k/M).
-- Only done() is defined: a request() or response() hook would make wrk call Lua per request
-- and slow the load generator down.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"durationUs":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
