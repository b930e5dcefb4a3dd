-- The quickstart's parse step in Lua: keep the clicks whose action is
-- config.action (default "view"), emit {"product_id":..,"ts":..} keyed by the
-- product id, with the click's ts as the event time (the same semantics as
-- clicks:parse_views in C).
local decode, encode = sluice.json.decode, sluice.json.encode
local action

function open(ctx)
  action = ctx.config.action or "view"
end

function process(rec, ctx)
  local v = decode(rec.value)
  if v.action ~= action then return end
  local ts = v.ts or rec.ts
  ctx:emit(encode({product_id = v.product_id, ts = ts}), v.product_id, ts)
end
