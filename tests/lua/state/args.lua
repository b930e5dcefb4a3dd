-- Wrong arguments and misplaced calls raise errors with clear messages; each
-- is caught with pcall and its message checked here. Emits "<key> ok" per
-- record when every check passed; raises a list of what went wrong otherwise.
local problems = {}
local v, l, m

local function expect(want, f, ...)
  local ok, err = pcall(f, ...)
  if ok then
    problems[#problems + 1] = "no error, expected '" .. want .. "'"
  elseif not string.find(tostring(err), want, 1, true) then
    problems[#problems + 1] = "error '" .. tostring(err) .. "', expected '" .. want .. "'"
  end
end

function open(ctx)
  local names = "name must be a non-empty string without '\\0'"
  expect(names, ctx.value_state, ctx)
  expect(names, ctx.value_state, ctx, "")
  expect(names, ctx.list_state, ctx, 42)
  expect(names, ctx.map_state, ctx, "a\0b")
  expect("ttl '10x' is not a duration", ctx.value_state, ctx, "x", {ttl = "10x"})
  expect("ttl must be an integer number of ms >= 0", ctx.value_state, ctx, "x", {ttl = -1})
  expect("ttl must be an integer number of ms >= 0", ctx.value_state, ctx, "x", 1.5)
  expect("unknown option tll (the only option is ttl)", ctx.value_state, ctx, "x", {tll = "1s"})
  expect("opts must be a table", ctx.value_state, ctx, "x", "10m")
  ctx:value_state("dup")
  expect("'dup' is already declared as a value state", ctx.list_state, ctx, "dup")
  expect("ctx:op_state_put('x'): only allowed in snapshot(ctx, checkpoint_id) (called in open)",
         ctx.op_state_put, ctx, "x", "y")
  expect("ctx:op_state_get: name must be", ctx.op_state_get, ctx, "")
  if ctx:op_state_get("x") ~= nil then problems[#problems + 1] = "op_state_get on a fresh start is not nil" end
  if ctx:checkpoint_restored() ~= 0 then problems[#problems + 1] = "checkpoint_restored() on a fresh start is not 0" end
  if math.type(ctx:checkpoint_restored()) ~= "integer" then problems[#problems + 1] = "checkpoint_restored() is not an integer" end
  v = ctx:value_state("v", {ttl = "10s"})
  l = ctx:list_state("l", {})
  m = ctx:map_state("m", {ttl = 0})
  if tostring(v) ~= "value state 'v'" or tostring(l) ~= "list state 'l'" or tostring(m) ~= "map state 'm'" then
    problems[#problems + 1] = "tostring of handles: " .. tostring(v) .. ", " .. tostring(l) .. ", " .. tostring(m)
  end
  if getmetatable(v) ~= false then problems[#problems + 1] = "a handle's metatable is not protected" end
end

function process(rec, ctx)
  expect("value state 'v': set(): the value is nil: use clear() to remove the value", v.set, v, nil)
  expect("set(): the value must be a string, number, boolean or table, got function", v.set, v, print)
  expect("set(): the value: cannot store this table as JSON", v.set, v, {f = print})
  expect("get(): call it with ':' on a value_state handle", v.get)
  expect("get(): call it with ':' on a value_state handle", v.get, l)
  expect("clear(): call it with ':' on a state handle", v.clear, {})
  expect("list state 'l': get(): the index must be an integer >= 1, got 0", l.get, l, 0)
  expect("get(): the index must be an integer >= 1, got string", l.get, l, "x")
  expect("get(): the index must be an integer >= 1, got 1.5", l.get, l, 1.5)
  expect("trim_front(): n must be an integer >= 0, got -1", l.trim_front, l, -1)
  expect("list state 'l': add(): the value is nil", l.add, l)
  expect("map state 'm': put(): the key is nil", m.put, m, nil, 1)
  expect("put(): the key is NaN (not a valid map key)", m.put, m, 0 / 0, 1)
  expect("put(): the value is nil: use remove(k) to remove a key", m.put, m, "k")
  expect("map state 'm': get(): the key is nil", m.get, m)
  expect("remove(): the key must be a string, number, boolean or table, got function", m.remove, m, print)
  expect("ctx:op_state_put('x'): only allowed in snapshot(ctx, checkpoint_id) (called in process)",
         ctx.op_state_put, ctx, "x", "y")
  expect("ctx:op_state_get('x'): only allowed in open(ctx)", ctx.op_state_get, ctx, "x")
  expect("ctx:value_state('late'): keyed state is declared in open(ctx) only (called in process)",
         ctx.value_state, ctx, "late")
  if ctx:checkpoint_restored() ~= 0 then problems[#problems + 1] = "checkpoint_restored() in process is not 0" end
  -- nothing half-done by the failed calls
  if v:get() ~= nil or l:len() ~= 0 or m:get("k") ~= nil then problems[#problems + 1] = "a failed call stored something" end
  if #problems > 0 then error(#problems .. " problem(s):\n  " .. table.concat(problems, "\n  "), 0) end
  ctx:emit(rec.key .. " ok")
end
