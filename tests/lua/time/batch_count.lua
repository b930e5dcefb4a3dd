-- process_batch only, no timers: a count per key in the task's globals,
-- emitted in on_end as "key,n", and the largest #recs seen ("max_batch,N").
-- On a key_by node the runtime calls it with one-record batches.
local n, max_batch = {}, 0

function process_batch(recs, ctx)
  if #recs > max_batch then max_batch = #recs end
  for i = 1, #recs do
    local k = recs[i].key
    n[k] = (n[k] or 0) + 1
  end
end

function on_end(ctx)
  for k, c in pairs(n) do ctx:emit(k .. "," .. c, k) end
  ctx:emit("max_batch," .. max_batch)
end
