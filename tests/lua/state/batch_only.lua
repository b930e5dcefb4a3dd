-- Declares keyed state but defines only process_batch: open fails (keyed
-- state is per record).
local st
function open(ctx) st = ctx:value_state("count") end
function process_batch(recs, ctx)
  for i = 1, #recs do ctx:emit(recs[i].value) end
end
