-- wrk script for subrecipe.sh: POST /v1/apc/subrecipe, each request a new lot on a new thread
-- with its own Idempotency-Key (<prefix>-<wrk thread>-<n>), the token as a bearer token.
--
--   wrk -t2 -c16 -d10s -s subrecipe.lua http://127.0.0.1:PORT -- PREFIX TOKEN
--
-- done() prints one machine-readable line: WRK requests=… p50_us=… p99_us=… errors=…

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  prefix = args[1] or "bench"
  headers = {
    ["Authorization"] = "Bearer " .. (args[2] or ""),
    ["Content-Type"] = "application/json",
  }
  n = 0
end

function request()
  n = n + 1
  local id = prefix .. "-" .. tid .. "-" .. n
  headers["Idempotency-Key"] = "bench-" .. id
  local body = '{"lot": {"lot": "LOT-' .. id .. '", "thread": {"fab": "fab-1", '
    .. '"tool": "scanner-07", "product": "soc-a", "technology": "N5", "layer": "M1", '
    .. '"reticle": "RT-' .. id .. '"}, "product_kind": "mobile"}, "mode": {"mode": "formula"}}'
  return wrk.format("POST", "/v1/apc/subrecipe", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.status + e.timeout))
end
