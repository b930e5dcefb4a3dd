-- Resource bombs (tests/e2e/lua_bombs.sh). config.bomb names one entry of B;
-- process() sets it off on every record. Every bomb must be stopped by one of
-- the node's limits (lua_instructions, lua_memory_mb, lua_timeout,
-- lua_pattern_steps, or Lua's own stack limit) and the record skipped.
-- Odd calls set the bomb off; even calls emit "alive ..." (the state works
-- after a limit broke). "noop" is the baseline; "open_loop" / "on_end_loop" loop in those
-- callbacks instead (the job fails with the limit's message).
local B = {}

B.noop = function() end
B.loop = function() while true do end end
B.loop_pcall = function() while true do pcall(function() while true do end end) end end
B.loop_xpcall_handler = function()
  -- the message handler loops too
  while true do xpcall(function() while true do end end, function() while true do end end) end
end
B.loop_coroutine = function() coroutine.wrap(function() while true do end end)() end
B.coroutine_swallow = function()
  -- each coroutine trips the limit; the error is returned by resume, not raised
  while true do
    local co = coroutine.create(function() while true do end end)
    pcall(coroutine.resume, co)
  end
end
B.coroutine_trip_escape = function()
  -- trip the limit on a coroutine, then keep the main thread's work inside a
  -- pcall placed so that raises every hook period land inside it
  pcall(coroutine.wrap(function() while true do end end))
  while true do pcall(function() for _ = 1, 1e12 do end end) end
end
B.coroutine_many = function()
  -- spread the work over many fresh threads, each under the hook period
  while true do
    local co = coroutine.create(function() for _ = 1, 200 do end end)
    coroutine.resume(co)
  end
end
-- created while the script was loaded, before any call
local EARLY = coroutine.wrap(function() while true do end end)
B.coroutine_early = function() EARLY() end
B.loop_config = function(ctx)
  -- raising the limits from the script does nothing
  ctx.config.lua_instructions = 1 << 60
  ctx.config.lua_timeout = 1 << 40
  ctx.config.lua_memory_mb = 1 << 20
  while true do end
end
B.err_tostring_loop = function()
  error(setmetatable({}, {__tostring = function() while true do end end}))
end
B.rep = function() return #string.rep("x", 2 ^ 31) end -- stock Lua: "resulting string too large"
B.rep_1g = function() return #string.rep("x", 2 ^ 30) end
B.rep_sep = function() return #string.rep("x", 1 << 20, string.rep("y", 1024)) end
B.pattern = function() return string.find(string.rep("a", 50000), ".-.-.-.-.-b") end
B.pattern_gmatch = function()
  for _ in string.gmatch(string.rep("a", 50000), ".-.-.-.-b") do end
end
B.pattern_gsub = function() return string.gsub(string.rep("a", 20000), "a-a-a-a-b", "") end
B.pattern_backref = function() return string.find(string.rep("ab", 20000), "(.-)(.-)%2%1x") end
B.table_growth = function()
  local t = {}
  while true do t[#t + 1] = {#t} end
end
B.string_growth = function()
  local t = {}
  while true do t[#t + 1] = string.rep("x", 1000) .. #t end
end
B.concat_double = function()
  local s = "x"
  while true do s = s .. s end
end
B.table_concat = function()
  local t = {}
  for i = 1, 1 << 16 do t[i] = string.rep("z", 64) end
  while true do t[#t + 1] = table.concat(t) end
end
B.recursion = function()
  local function f(n) return 1 + f(n + 1) end
  return f(1)
end
B.recursion_c = function()
  local t = setmetatable({}, {})
  getmetatable(t).__index = function(tt, k) return tt[k .. "x"] end
  return t.a
end
B.recursion_pcall = function()
  local function f() pcall(f) pcall(f) end
  f()
end
B.gsub_big = function()
  return #string.rep("x", 1 << 20):gsub(".", string.rep("y", 64))
end
B.gsub_fn = function()
  return #string.rep("x", 1 << 22):gsub(".", function(c) return c end)
end
B.sort = function()
  -- time spent inside one C function: table.sort of ~1.8M small integers
  -- takes about a second; built without Lua loops (string.byte, table.move)
  -- so only the sort itself can break lua_timeout
  local s = string.rep("\x07\xe3\x51\x9a\x2c\xf0\x33\x88\x61", 100000)
  local t = {string.byte(s, 1, 900000)}
  table.move(t, 1, 900000, 900001)
  table.sort(t)
end
B.emit_flood = function(ctx)
  local s = string.rep("e", 1024)
  while true do ctx:emit(s) end
end
B.counter_flood = function(ctx)
  local i = 0
  while true do
    i = i + 1
    ctx:counter("c" .. i .. string.rep("n", 200))
  end
end
-- the same with limits loose enough for the names to reach lua_memory_mb
B.counter_flood_long = B.counter_flood
B.header_flood = function(ctx)
  local h = {}
  for i = 1, 4000 do h["h" .. i] = string.rep("v", 256) end
  while true do ctx:emit("x", "k", 0, h) end
end
B.gc_finalizer = function()
  -- garbage whose finalizers loop: they run during some later collection
  for _ = 1, 100 do setmetatable({}, {__gc = function() while true do end end}) end
  collectgarbage("count")
  local t = {}
  for i = 1, 20000 do t[i % 100 + 1] = {i} end -- make garbage so a cycle runs
end
B.gc_added_later = function()
  -- __gc added to a metatable after setmetatable: Lua 5.4 does not mark the
  -- object, so nothing may run (and nothing may hang)
  for _ = 1, 100 do
    local mt = {}
    setmetatable({}, mt)
    mt.__gc = function() while true do end end
  end
  local t = {}
  for i = 1, 20000 do t[i % 100 + 1] = {i} end
end
B.gc_at_close = function()
  -- a finalizer that loops when the state is closed at the end of the job
  rawset(_G, "KEEP", setmetatable({}, {__gc = function() while true do end end}))
end

function open(ctx)
  if ctx.config.bomb == "open_loop" then while true do end end
end

local calls = 0
function process(rec, ctx)
  -- odd calls set the bomb off, even calls check that the state still works
  -- after a limit broke
  calls = calls + 1
  if calls % 2 == 0 then
    local t = {}
    for i = 1, 1000 do t[i] = tostring(i) end
    ctx:emit("alive " .. calls .. " " .. #table.concat(t) .. " " .. string.format("%d", #string.rep("a", 100)))
    return
  end
  local f = B[ctx.config.bomb]
  if f then return f(ctx) end
  if ctx.config.bomb ~= "on_end_loop" and ctx.config.bomb ~= "open_loop" then
    error("bomb.lua: no bomb named '" .. tostring(ctx.config.bomb) .. "'")
  end
end

function on_end(ctx)
  if ctx.config.bomb == "on_end_loop" then while true do end end
end
