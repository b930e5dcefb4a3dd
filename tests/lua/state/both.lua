-- Defines process and process_batch and declares keyed state: the host turns
-- batching off, so every record goes through process (emits "process,k,n",
-- n the key's running count); process_batch would emit "batch".
local count
function open(ctx) count = ctx:value_state("count") end
function process(rec, ctx)
  local n = (count:get() or 0) + 1
  count:set(n)
  ctx:emit("process," .. rec.key .. "," .. n)
end
function process_batch(recs, ctx)
  for i = 1, #recs do ctx:emit("batch") end
end
