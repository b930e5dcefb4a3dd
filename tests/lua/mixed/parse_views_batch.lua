-- parse_views.lua with process_batch, emitting without a key: the DAG keys
-- the output by the JSON field product_id.
local decode, encode = sluice.json.decode, sluice.json.encode

function process_batch(recs, ctx)
  local calls = ctx:counter("calls")
  calls:add()
  for i = 1, #recs do
    local v = decode(recs[i].value)
    if v.action == "view" then
      ctx:emit(encode({product_id = v.product_id, ts = v.ts}), "", v.ts)
    end
  end
end
