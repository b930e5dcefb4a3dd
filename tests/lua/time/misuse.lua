-- Timers used wrongly; config.where picks the mistake:
--   open        ctx:timer_set in open
--   nokey       ctx:timer_set in process on a node without key_by
--   domain      an unknown domain string
--   float       a ts that is not an integer
--   watermark   ctx:timer_set in on_watermark
-- (batch_misuse.lua: in process_batch; no_on_timer.lua: without on_timer)
local where

function open(ctx)
  where = ctx.config.where
  if where == "open" then ctx:timer_set(1000) end
end

function process(rec, ctx)
  if where == "nokey" then ctx:timer_set(rec.ts + 1000) end
  if where == "domain" then ctx:timer_set(rec.ts, "wall") end
  if where == "float" then ctx:timer_set(rec.ts + 0.5) end
  ctx:emit(rec.value)
end

function on_watermark(wm, ctx)
  if where == "watermark" then ctx:timer_set(1000) end
end

function on_timer(ts, domain, ctx) end
