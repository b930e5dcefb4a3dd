-- ctx:timer_set in process_batch (on a node without key_by).
function process_batch(recs, ctx)
  for i = 1, #recs do ctx:timer_set(recs[i].ts) end
end

function on_timer(ts, domain, ctx) end
