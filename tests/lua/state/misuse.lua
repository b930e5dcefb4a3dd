-- Keyed state used where it is not allowed; config.where picks the place:
--   open       st:get() in open              (the job fails to start)
--   on_end     st:get() in on_end            (the job fails)
--   close      st:get() in close             (logged as a warning only)
--   snapshot   st:set() in snapshot          (the job fails; checkpoints on)
--   declare    ctx:value_state in process    (a record failure: on_error)
--   declare_end ctx:list_state in on_end     (the job fails)
local where
local st

function open(ctx)
  where = ctx.config.where
  st = ctx:value_state("count")
  if where == "open" then st:get() end
end

function process(rec, ctx)
  if where == "declare" then ctx:value_state("late") end
  st:set((st:get() or 0) + 1)
  ctx:emit("ok")
end

function on_end(ctx)
  if where == "on_end" then st:get() end
  if where == "declare_end" then ctx:list_state("late") end
end

function close(ctx)
  if where == "close" then st:get() end
end

function snapshot(ctx, id)
  if where == "snapshot" then st:set(1) end
end
