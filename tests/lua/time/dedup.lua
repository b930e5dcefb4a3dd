-- Timers are deduplicated and timer_delete works. Each record's field op:
--   set: set event-time timers at 10000 (twice) and 20000 (a later record
--        deletes it), and a processing-time timer far away that is deleted
--        at once
--   del: delete the 20000 timer twice (true, then false when it existed)
-- on_timer reports each firing; the one at 10000 sets another at 30000
-- (timers can be set in on_timer, for the timer's key).
local decode = sluice.json.decode

function process(rec, ctx)
  local op = decode(rec.value).op
  if op == "set" then
    ctx:timer_set(10000)
    ctx:timer_set(10000)
    ctx:timer_set(20000, "event")
    local far = ctx:now() + 3600000
    ctx:timer_set(far, "processing")
    assert(ctx:timer_delete(far, "processing") == true, "processing timer not deleted")
    assert(ctx:timer_delete(far, "processing") == false, "processing timer deleted twice")
    ctx:emit("set " .. rec.key)
  else
    local first = ctx:timer_delete(20000)
    local second = ctx:timer_delete(20000)
    ctx:emit(string.format("del %s %s %s", rec.key, tostring(first), tostring(second)))
  end
end

function on_timer(ts, domain, ctx)
  ctx:emit(string.format("fired %s %d %s", ctx:current_key(), ts, domain))
  if ts == 10000 then ctx:timer_set(30000) end
end
