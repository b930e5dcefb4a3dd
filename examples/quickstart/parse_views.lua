-- parse_views.lua: keep the page views of a click stream and key them by
-- product. The Lua twin of the C operator clicks:parse_views
-- (examples/plugins/clicks/clicks.c), used by dag-lua.yaml.
--
-- config:
--   action   which clicks to keep (default "view")

local decode = sluice.json.decode
local encode = sluice.json.encode
local wanted

function open(ctx)
  wanted = ctx.config.action or "view"
end

function process(rec, ctx)
  local click = decode(rec.value)
  if type(click.product_id) ~= "string" then
    error("click without a product_id")
  end
  if click.action == wanted then
    -- value, key (the product), ts (the click's event time)
    ctx:emit(encode({ product_id = click.product_id, ts = click.ts }), click.product_id,
             math.tointeger(click.ts) or rec.ts)
  end
end
