-- What on_timer and on_watermark see. Per key, a count (value state) and the
-- key as process saw it; an event-time timer at the end of each 1 s bucket.
-- Checks (a failed assert fails the job with script:line):
--   open: ctx:watermark() is math.mininteger, ctx:current_key() is nil
--   process: ctx:current_key() == rec.key
--   on_timer: domain "event", ctx:current_key() is the key whose record set
--     the timer, keyed state is the key's, ctx:watermark() >= ts
--   on_watermark: wm never decreases, ctx:watermark() == wm, no current key
-- Emits one line per timer ("t key bucket_end count") and, in on_end, a
-- summary of the task: watermark calls, last watermark == math.maxinteger,
-- how many timers fired before the end of input (watermark < maxinteger).
local count, owner, buckets
local wms, last_wm, monotone, early = 0, math.mininteger, true, 0

function open(ctx)
  assert(ctx:watermark() == math.mininteger, "watermark in open: " .. tostring(ctx:watermark()))
  assert(ctx:current_key() == nil, "a current key in open")
  count = ctx:value_state("count")
  owner = ctx:value_state("owner")
  buckets = ctx:map_state("buckets")
end

function process(rec, ctx)
  assert(ctx:current_key() == rec.key, "current_key() ~= rec.key in process")
  count:set((count:get() or 0) + 1)
  owner:set(rec.key)
  local b = rec.ts // 1000 * 1000 + 999
  buckets:put(b, (buckets:get(b) or 0) + 1)
  ctx:timer_set(b)
end

function on_timer(ts, domain, ctx)
  assert(domain == "event", "domain " .. tostring(domain))
  assert(math.type(ts) == "integer", "ts is not an integer")
  local key = ctx:current_key()
  assert(type(key) == "string" and key == owner:get(),
         "on_timer: current key " .. tostring(key) .. " but state says " .. tostring(owner:get()))
  local wm = ctx:watermark()
  assert(wm >= ts, string.format("timer %d fired at watermark %d", ts, wm))
  if wm < math.maxinteger then early = early + 1 end
  local n = buckets:get(ts)
  assert(n and n > 0, "no count for bucket " .. ts)
  buckets:remove(ts)
  ctx:emit(string.format("t %s %d %d", key, ts, n))
end

function on_watermark(wm, ctx)
  assert(math.type(wm) == "integer", "wm is not an integer")
  if wm < last_wm then monotone = false end
  last_wm = wm
  wms = wms + 1
  assert(ctx:watermark() == wm, "ctx:watermark() ~= wm in on_watermark")
  assert(ctx:current_key() == nil, "a current key in on_watermark")
end

function on_end(ctx)
  ctx:emit(string.format("summary task=%d wms=%d monotone=%s last_is_max=%s early=%d",
                         ctx.task, wms, tostring(monotone), tostring(last_wm == math.maxinteger),
                         early))
end
