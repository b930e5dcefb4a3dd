-- Processing-time timers: per key, one pending timer 300 ms of wall time
-- ahead; on_timer emits "proc key domain late_ms" (late_ms = now - ts >= 0)
-- and the next record of the key arms a new one.
local armed

function open(ctx) armed = ctx:value_state("armed") end

function process(rec, ctx)
  if not armed:get() then
    ctx:timer_set(ctx:now() + 300, "processing")
    armed:set(true)
  end
end

function on_timer(ts, domain, ctx)
  armed:clear()
  ctx:emit(string.format("proc %s %s %d", ctx:current_key(), domain, ctx:now() - ts))
end
