-- alert.lua: turn the window results of dag.yaml into port-scan alerts.
--
-- Input: one record per (source IP, window) from the window operator, e.g.
--   {"key":"10.0.9.1","window_start":...,"window_end":...,"timing":"on_time",
--    "dsts":213,"ports":1,"conns":213}
-- Output (default output): one alert per window whose number of distinct
-- destination IPs exceeds the threshold, keyed by the source IP:
--   {"alert":"port_scan","src_ip":"10.0.9.1","window_start":...,"window_end":...,
--    "distinct_dst_ips":213,"distinct_dst_ports":1,"connections":213,"threshold":100}
-- Other windows emit nothing.
--
-- config:
--   threshold   alert when distinct_dst_ips > threshold (integer, default 100)

local decode = sluice.json.decode
local encode = sluice.json.encode
local threshold

function open(ctx)
  threshold = ctx.config.threshold
  if threshold == nil then threshold = 100 end
  if math.type(threshold) ~= "integer" or threshold < 0 then
    error("threshold must be a non-negative integer, got " .. tostring(ctx.config.threshold))
  end
end

function process(rec, ctx)
  local w = decode(rec.value)
  if w.dsts > threshold then
    -- a JSON object with a fixed member order, so the output is stable
    local line = string.format(
      '{"alert":"port_scan","src_ip":%s,"window_start":%d,"window_end":%d,' ..
      '"distinct_dst_ips":%d,"distinct_dst_ports":%d,"connections":%d,"threshold":%d}',
      encode(w.key), w.window_start, w.window_end, w.dsts, w.ports, w.conns, threshold)
    ctx:emit(line, rec.key, rec.ts)
  end
end
