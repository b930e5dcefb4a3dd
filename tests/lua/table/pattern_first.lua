-- A pathological pattern as the very first thing a call does, before the
-- instruction hook has looked at the clock: lua_timeout must still stop it.
local subject = string.rep("a", 60000)
function process(rec, ctx)
  string.find(subject, ".-.-.-.-.-.-b")
  ctx:emit("finished")
end
