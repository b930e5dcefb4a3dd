-- user_activity.lua (the example of docs/lua.md, "State"): per user, a running
-- count of clicks and the last 3 products seen. The node has key_by: user_id,
-- so rec.key is the user and the state below is that user's.
local clicks, recent

function open(ctx)
  clicks = ctx:value_state("clicks")                -- one integer per user
  recent = ctx:list_state("recent", {ttl = "30m"})  -- forgotten after 30 min without a click
end

function process(rec, ctx)
  local product = sluice.json.get(rec.value, "product_id")
  local n = (clicks:get() or 0) + 1
  clicks:set(n)
  recent:add(product)
  if recent:len() > 3 then recent:trim_front(recent:len() - 3) end
  -- e.g. "u17,5,p3|p41|p3": user, clicks so far, latest products (oldest first)
  ctx:emit(string.format("%s,%d,%s", rec.key, n, table.concat(recent:values(), "|")))
end
