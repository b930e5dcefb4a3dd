-- The escape suite's operator (tests/e2e/lua_sandbox.sh). config.attempt names
-- one entry of A below; process() runs it on every record:
--   * an escape attempt either raises (refused: the error goes to on_error) or
--     returns a string starting with "ESCAPED", which is emitted;
--   * a "works" probe returns a string starting with "OK", which is emitted;
--   * a hostile case does something nasty; the test only checks that the host
--     survives it.
-- The only global this script defines is `process` (the globals probe
-- relies on it).
local A = {}
local C -- ctx.config of the current call

-- try(f, ...): run every f; any that returns a truthy value is an escape.
-- When all of them raised, re-raise their errors joined (the first decides
-- the test's text check).
local function try(...)
  local errs = {}
  for i, f in ipairs({...}) do
    local ok, r = pcall(f)
    if ok and r then return "ESCAPED #" .. i .. ": " .. tostring(r) end
    if ok then errs[#errs + 1] = "#" .. i .. " returned " .. tostring(r)
    else errs[#errs + 1] = tostring(r) end
  end
  error(table.concat(errs, " | "), 0)
end

-- Allocate `mb` megabytes of garbage in small strings: completes under a
-- small lua_memory_mb only when the collector keeps running.
local function churn(mb)
  local keep
  for i = 1, mb * 256 do keep = string.rep(string.char(65 + i % 26), 4096 - 32) .. i end
  return keep ~= nil
end

---------------------------------------------------------------------- io
A.io_open = function() return "ESCAPED " .. io.open("/etc/passwd"):read("a") end
A.io_popen = function() return "ESCAPED " .. io.popen("id"):read("a") end
A.io_lines = function() for l in io.lines("/etc/passwd") do return "ESCAPED " .. l end end
A.io_write = function() io.write("ESCAPED to stdout\n") return "ESCAPED io.write" end

---------------------------------------------------------------------- os
A.os_execute = function() return "ESCAPED " .. tostring(os.execute("touch '" .. C.marker .. "'")) end
A.os_exit = function() os.exit(0) return "ESCAPED os.exit returned" end
A.os_getenv = function() return "ESCAPED HOME=" .. tostring(os.getenv("HOME")) end
A.os_remove = function() return "ESCAPED " .. tostring(os.remove(C.victim)) end
A.os_rename = function() return "ESCAPED " .. tostring(os.rename(C.victim, C.victim .. ".moved")) end
A.os_tmpname = function() return "ESCAPED " .. tostring(os.tmpname()) end
A.os_setlocale = function() return "ESCAPED " .. tostring(os.setlocale("C")) end
A.os_works = function()
  local t, c, d, tt = os.time(), os.clock(), os.date("!%Y-%m-%d", 0), os.date("!*t", 86400)
  assert(math.type(t) == "integer" and t > 1600000000, "os.time")
  assert(type(c) == "number", "os.clock")
  assert(d == "1970-01-01", "os.date: " .. tostring(d))
  assert(tt.day == 2 and tt.year == 1970, "os.date *t")
  assert(os.time({year = 2000, month = 1, day = 1, hour = 12}) ~= nil, "os.time(table)")
  return "OK os.time os.clock os.date"
end

---------------------------------------------------------------------- package / require
A.pkg_loadlib = function()
  local f = assert(package.loadlib("libc.so.6", "system"))
  return "ESCAPED " .. tostring(f("touch '" .. C.marker .. "'"))
end
A.pkg_cpath = function()
  package.cpath = "/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;/usr/local/lib/lua/5.4/?.so;/usr/lib/lua/5.4/?.so"
  return "ESCAPED cjson via cpath: " .. tostring(require("cjson"))
end
A.pkg_path = function()
  package.path = C.absdir .. "/?.lua;../?.lua;../../?.lua;/?.lua"
  return "ESCAPED secret via package.path: " .. tostring(require("secret"))
end
A.pkg_searchers = function()
  return try(
    function()
      for i, s in ipairs(package.searchers) do
        local l = s("cjson")
        if type(l) == "function" then return "searcher " .. i .. " found cjson" end
      end
    end,
    function()
      table.insert(package.searchers, 1, function(name)
        return function() return "ESCAPED-SEARCHER" end
      end)
      local r = require("no_such_module_x")
      return r == "ESCAPED-SEARCHER" and r
    end)
end
A.pkg_loaded = function()
  return try(
    function() return package.loaded.io.open("/etc/passwd") end,
    function() return package.loaded.os.execute end,
    function() return package.loaded.debug.getregistry() end,
    function() return package.loaded._G.io end,
    function() return package.preload and next(package.preload) == nil and "preload writable" end)
end
A.require_io = function() return "ESCAPED " .. tostring(require("io").open("/etc/passwd")) end
A.require_os = function() return "ESCAPED " .. tostring(require("os").execute) end
A.require_debug = function() return "ESCAPED " .. tostring(require("debug").getregistry()) end
A.require_package = function() return "ESCAPED " .. tostring(require("package").loadlib) end
A.require_G = function()
  local g = require("_G")
  return "ESCAPED require('_G') returned " .. tostring(g) .. (rawget(g, "io") and " with io" or "")
end
A.require_cjson = function() return "ESCAPED " .. tostring(require("cjson")) end
A.require_cjson_safe = function() return "ESCAPED " .. tostring(require("cjson.safe")) end
A.require_evil_so = function() return "ESCAPED " .. tostring(require("evil")) end
A.require_dotdot = function() return "ESCAPED " .. tostring(require("../secret")) end
A.require_dotdot2 = function() return "ESCAPED " .. tostring(require("../../secret")) end
A.require_dots = function()
  return try(
    function() return require("..secret") end,
    function() return require(".secret") end,
    function() return require("...secret") end,
    function() return require(".." .. C.absdir:gsub("/", ".") .. ".secret") end)
end
A.require_abs = function() return "ESCAPED " .. tostring(require(C.absdir .. "/secret")) end
A.require_abs_dotted = function()
  -- "/abs/dir" spelled with dots: dots -> '/' must not give an absolute path
  local dotted = C.absdir:gsub("/", ".")
  return "ESCAPED " .. tostring(require(dotted .. ".secret"))
end
A.require_outside = function() return "ESCAPED " .. tostring(require("secret")) end
A.require_binary = function() return "ESCAPED " .. tostring(require("binmod")) end
A.require_ok = function()
  local m1, m2, d = require("sub.mod"), require("sub.mod"), require("dagmod")
  assert(m1 == m2, "require is not cached")
  return "OK " .. m1.name .. " " .. d
end
A.require_sandboxed = function()
  local p = require("peek")
  return p == "clean" and "OK module sees the sandbox" or "ESCAPED module sees: " .. tostring(p)
end

---------------------------------------------------------------------- debug
A.debug_getinfo = function() return "ESCAPED " .. tostring(debug.getinfo(1, "S").source) end
A.debug_sethook = function() debug.sethook() return "ESCAPED hook removed" end
A.debug_getregistry = function() return "ESCAPED " .. tostring(debug.getregistry()) end
A.debug_upvalueid = function() return "ESCAPED " .. tostring(debug.upvalueid(try, 1)) end

---------------------------------------------------------------------- load / dump
-- A binary chunk: a real one (bin_chunk.lua, written by the test with a
-- standalone lua5.4 when it has one) or a crafted Lua 5.4 header.
local function binary_chunk()
  local ok, b = pcall(require, "bin_chunk")
  if ok and type(b) == "string" then return b end
  return "\27Lua\x54\0\x19\x93\r\n\x1a\n\4\8\8" .. string.pack("<j", 0x5678) .. string.pack("<n", 370.5) .. "\1"
end
local function load_or_raise(...)
  local f, e = load(...)
  if not f then error(e, 0) end
  return "ESCAPED binary chunk loaded: " .. tostring(f())
end
A.load_binary = function() return load_or_raise(binary_chunk()) end
A.load_binary_b = function() return load_or_raise(binary_chunk(), "=x", "b") end
A.load_binary_bt = function() return load_or_raise(binary_chunk(), "=x", "bt") end
A.load_binary_reader = function()
  local b, i = binary_chunk(), 0
  return load_or_raise(function() i = i + 1; return i <= #b and b:sub(i, i) or nil end, "=x", "bt")
end
A.load_text_env = function()
  local r = {load("return io")(), load("return os.execute")(), load("return debug")(),
             load("return package and package.loadlib")(), load("return rawget(_G, 'dofile')")()}
  for i = 1, 5 do if r[i] ~= nil then return "ESCAPED load'ed chunk sees " .. i end end
  return "OK load runs text in the sandbox"
end
A.string_dump = function() return "ESCAPED " .. #string.dump(function() end) end
A.string_dump_method = function() return "ESCAPED " .. #(("").dump(function() end)) end

---------------------------------------------------------------------- string metatable
A.strmeta_get = function()
  local mt = getmetatable("")
  return mt == false and "OK getmetatable('') is false" or "ESCAPED string metatable: " .. tostring(mt)
end
A.strmeta_index = function()
  getmetatable("").__index = {upper = function() return "PWNED" end}
  return ("x"):upper() == "PWNED" and "ESCAPED __index replaced" or nil
end
A.strmeta_set = function() setmetatable("", {}) return "ESCAPED setmetatable on a string" end
A.strmeta_rawset = function() rawset(getmetatable("a"), "__add", function() return "PWNED" end) return "ESCAPED" end

---------------------------------------------------------------------- _G / _ENV
A.rawget_hidden = function()
  local found = {}
  local hidden = {"io", "debug", "package", "dofile", "loadfile", "loadstring", "module",
                  "setfenv", "getfenv", "unpack", "newproxy", "gcinfo", "jit", "ffi"}
  for _, n in ipairs(hidden) do
    if rawget(_G, n) ~= nil then found[#found + 1] = n end
  end
  local mt = getmetatable(_G)
  if mt ~= nil then
    found[#found + 1] = "_G has a metatable " .. tostring(mt)
    if type(mt) == "table" and type(rawget(mt, "__index")) == "table" then
      for _, n in ipairs(hidden) do
        if rawget(mt.__index, n) ~= nil then found[#found + 1] = "__index." .. n end
      end
    end
  end
  if rawget(_G, "_G") ~= _G then found[#found + 1] = "_G._G is not _G" end
  if _ENV ~= _G then found[#found + 1] = "_ENV is not _G" end
  return #found == 0 and "OK nothing hidden" or "ESCAPED " .. table.concat(found, ",")
end
A.env_local = function()
  local _ENV = setmetatable({}, {__index = _G})
  return "ESCAPED " .. tostring(io.open)
end
A.env_upvalues = function()
  -- Without debug, the only ways to a function's upvalues are load and
  -- string.dump; a host function exposes nothing but its result.
  local seen = {}
  for _, f in pairs({require, load, print, pcall, tostring, next}) do
    local ok, r = pcall(f, "io")
    if ok and type(r) == "table" and rawget(r, "open") then seen[#seen + 1] = tostring(f) end
  end
  return #seen == 0 and "OK" or "ESCAPED " .. table.concat(seen, ",")
end
A.userdata_meta = function()
  -- Metatables of host objects must not hand out callable internals that
  -- work on the wrong object (type confusion) or free it early (__gc).
  local objs = {rec = C._rec, ctx = C._ctx, counter = C._ctx:counter("probe")}
  local report = {}
  for name, u in pairs(objs) do
    local mt = getmetatable(u)
    report[#report + 1] = name .. ":" .. type(mt)
    local fns = {}
    if type(mt) == "table" then
      for k, v in pairs(mt) do if type(v) == "function" then fns[#fns + 1] = v end end
      if type(mt.__index) == "table" then
        for k, v in pairs(mt.__index) do if type(v) == "function" then fns[#fns + 1] = v end end
      end
    end
    for _, f in ipairs(fns) do
      for _, self in ipairs({C._rec, C._ctx, objs.counter, "s", 1, {}, false}) do
        pcall(f, self, "key")
        pcall(f, self, "value")
        pcall(f, self)
      end
    end
  end
  C._ctx:emit("survived " .. table.concat(report, " "))
  return nil
end

---------------------------------------------------------------------- collectgarbage
A.gc_count = function()
  local k = collectgarbage("count")
  return type(k) == "number" and k > 0 and "OK count works" or "count returned " .. tostring(k)
end
A.gc_control = function()
  -- Whatever these do (raise, or nothing), the collector must keep running:
  -- churn 64 MB of garbage under lua_memory_mb 16.
  local refused = 0
  for _, args in ipairs({{"stop"}, {"setpause", 1000}, {"setstepmul", 0}, {"incremental", 1000, 0},
                         {"generational", 100, 100}, {"step", 0}, {"collect"}}) do
    if not pcall(collectgarbage, table.unpack(args)) then refused = refused + 1 end
    churn(8)
  end
  local ok, running = pcall(collectgarbage, "isrunning")
  if ok and running == false then return "ESCAPED collector stopped" end
  return "OK gc control refused " .. refused .. "/7"
end

---------------------------------------------------------------------- misc globals
A.dofile = function() return "ESCAPED " .. tostring(dofile("/etc/passwd")) end
A.loadfile = function() return "ESCAPED " .. tostring(loadfile("/etc/passwd")) end
A.print_log = function() print("hello-from-lua", 42, nil, true) return "OK printed" end
A.globals = function()
  local g, names = {}, {}
  for k in next, _G do g[#g + 1] = tostring(k) end
  for k in pairs(os) do names[#names + 1] = "os." .. k end
  for k in pairs(string) do names[#names + 1] = "string." .. k end
  table.sort(g); table.sort(names)
  return "OK " .. table.concat(g, " ") .. " | " .. table.concat(names, " ")
end
A.config_limits = function()
  local c = C._ctx.config
  local bad = {}
  for _, k in ipairs({"lua_instructions", "lua_memory_mb", "lua_timeout", "lua_pattern_steps"}) do
    if c[k] ~= nil then bad[#bad + 1] = k end
  end
  return #bad == 0 and "OK limit keys hidden" or "ESCAPED limit keys visible: " .. table.concat(bad, ",")
end

---------------------------------------------------------------------- hostile (must not crash)
A.err_table = function() error({code = 1}) end
A.err_nil = function() error(nil) end
A.err_tostring_errors = function() error(setmetatable({}, {__tostring = function() error("boom in __tostring") end})) end
A.err_tostring_table = function() error(setmetatable({}, {__tostring = function() return {} end})) end
A.err_gc = function() error(setmetatable({}, {__gc = function() error("boom in __gc") end})) end
A.err_huge = function() error(string.rep("E", 1 << 20)) end
A.err_level = function() error("level 99", 99) end
A.err_yield = function() coroutine.yield("out of process") end
A.emit_table = function() C._ctx:emit({a = 1}) return "ESCAPED table emitted" end
A.emit_nil = function() C._ctx:emit(nil) return "ESCAPED nil emitted" end
A.emit_function = function() C._ctx:emit(print) return "ESCAPED function emitted" end
A.emit_bad_key = function() C._ctx:emit("v", {}) return "ESCAPED table key" end
A.emit_bad_ts = function() C._ctx:emit("v", "k", "not a number") return "ESCAPED string ts" end
A.emit_nan_ts = function() C._ctx:emit("v", "k", 0 / 0) return "ESCAPED NaN ts" end
A.emit_huge_ts = function() C._ctx:emit("v", "k", 1e300) return "ESCAPED 1e300 ts" end
A.emit_bad_headers = function() C._ctx:emit("v", "k", 0, {h = {}}) return "ESCAPED table header value" end
A.emit_headers_string = function() C._ctx:emit("v", "k", 0, "h") return "ESCAPED string headers" end
A.emit_huge_headers = function()
  local h = {}
  for i = 1, 20000 do h["h" .. i] = string.rep("v", 100) end
  h.big = string.rep("B", 1 << 20)
  C._ctx:emit("with huge headers", "k", 0, h)
  return nil
end
A.emit_dot_call = function() C._ctx.emit("value") return "ESCAPED dot call" end
A.emit_rec_self = function() C._ctx.emit(C._rec, "value") end -- self may be ignored: no type confusion
A.emit_to_unknown = function() C._ctx:emit_to("no_such_port", "v") return "ESCAPED unknown port" end
A.rec_after_call = function()
  -- record 1 is kept; record 2 reads it after its call returned
  if not _SAVED then rawset(_G, "_SAVED", C._rec) return nil end
  local r = rawget(_G, "_SAVED")
  return "ESCAPED stale rec: " .. tostring(r.value) .. tostring(r.key) .. tostring(r.headers)
end
A.rec_after_coroutine = function()
  if not rawget(_G, "_CO") then
    local rec = C._rec
    rawset(_G, "_CO", coroutine.wrap(function() coroutine.yield() return rec.value end))
    rawget(_G, "_CO")()
    return nil
  end
  return "ESCAPED stale rec in a coroutine: " .. tostring(rawget(_G, "_CO")())
end
A.rec_assign = function() C._rec.value = "x"; C._rec.key = "y" end
A.return_weird = function() return nil end
A.json_hostile = function()
  local j = sluice.json
  local t = {}; t.t = t
  local cases = {
    function() return j.decode(string.rep("[", 200000)) end,
    function() return j.encode(t) end,
    function() return j.decode(nil) end,
    function() return j.decode({}) end,
    function() return j.encode(math.huge) end,
    function() return j.encode({[1 << 40] = 1}) end,
    function() return j.encode(print) end,
    function() return j.decode('"\\ud800"') end,
    function() return j.decode("1e99999") end,
    function() return j.decode(string.rep('{"a":', 5000) .. "1" .. string.rep("}", 5000)) end,
  }
  for _, f in ipairs(cases) do pcall(f) end
  return "OK json survived"
end

function process(rec, ctx)
  C = ctx.config
  C._rec, C._ctx = rec, ctx
  local f = A[C.attempt]
  if not f then error("escape.lua: no attempt named '" .. tostring(C.attempt) .. "'", 0) end
  local r = f()
  if r ~= nil then ctx:emit(tostring(r)) end
  if C.attempt == "return_weird" then -- whatever process returns is ignored
    return setmetatable({}, {__index = print}), print, coroutine.create(print), -1, 0 / 0
  end
end
