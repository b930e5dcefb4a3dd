-- ctx:timer_set in a script that defines no on_timer.
function process(rec, ctx)
  ctx:timer_set(rec.ts + 1000)
end
