-- window_count.lua: per key, the number of records in each 1-minute window
-- of event time, emitted when the watermark passes the window's end (an
-- event-time timer at the window's last millisecond). config.window_ms
-- changes the window size. Run by tests/e2e/lua_timers.sh; the example of
-- docs/lua.md.
local size, counts

function open(ctx)
  size = ctx.config.window_ms or 60000
  counts = ctx:map_state("counts")          -- window end -> count, per key
end

function process(rec, ctx)
  local last = rec.ts - rec.ts % size + size - 1   -- the window's last ms
  counts:put(last, (counts:get(last) or 0) + 1)
  ctx:timer_set(last)                       -- once per key and window: set twice = one timer
end

function on_timer(ts, domain, ctx)
  local n = counts:get(ts)
  counts:remove(ts)
  -- key, window start, count; the output record has the window's last ms as its ts
  ctx:emit(string.format("%s,%d,%d", ctx:current_key(), ts - size + 1, n), nil, ts)
end
