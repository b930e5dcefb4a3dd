-- process_batch keeps one rec of its first call; every later call reads it:
-- each read must raise "record used after the call that received it" (never
-- return another call's record). (The recs userdata itself is one object
-- reused for every call: a kept recs reads the current batch, which the
-- contract allows; the test only logs it.)
local saved_recs, saved_rec
function process_batch(recs, ctx)
  if not saved_recs then
    saved_recs, saved_rec = recs, recs[1]
    return
  end
  local ok1, r1 = pcall(function() return #saved_recs end)
  if ok1 and not rawequal(saved_recs, recs) then
    ctx:emit("ESCAPED a kept recs from an earlier call is readable and is not the current one")
  end
  local ok3, r3 = pcall(function() return saved_rec.value end)
  if ok3 then ctx:emit("ESCAPED stale batch rec read: " .. tostring(r3)) end
  error(tostring(r3))
end
