-- wrk script for bench/presign.sh.
--
-- BENCH_TOKEN      when set, sent as "Authorization: Bearer <token>" (reelup-server)
-- BENCH_PART_PATH  when set, e.g. "/s3/multipart/<uploadId>/", each request signs the next
--                  part number (1..10000, cycling) at BENCH_PART_PATH .. n .. BENCH_PART_QUERY;
--                  otherwise every request is the URL given to wrk.
-- BENCH_PART_QUERY e.g. "?key=<key>"
--
-- done() prints one JSON line with the figures bench/presign.sh tabulates.

local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local part_path = os.getenv("BENCH_PART_PATH")
local part_query = os.getenv("BENCH_PART_QUERY") or ""

if part_path and part_path ~= "" then
  local n = 0
  request = function()
    n = n % 10000 + 1
    return wrk.format("GET", part_path .. n .. part_query)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, latency.mean))
end
