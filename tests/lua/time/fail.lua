-- Errors in the event-time callbacks; config.fail_in picks one:
--   on_timer      a runtime error in on_timer
--   on_watermark  a runtime error in on_watermark
--   loop          an endless loop in on_timer (the instruction budget stops it)
local fail_in

function open(ctx) fail_in = ctx.config.fail_in end

function process(rec, ctx)
  ctx:timer_set(rec.ts)
end

function on_timer(ts, domain, ctx)
  if fail_in == "on_timer" then
    local t = nil
    return t.field                              -- attempt to index a nil value
  end
  if fail_in == "loop" then
    while true do end
  end
end

function on_watermark(wm, ctx)
  if fail_in == "on_watermark" then error("watermark boom") end
end
