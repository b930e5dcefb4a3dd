-- Type round trips through keyed state, checked by the script itself. Input:
-- {"k":...} lines; each key's records are its steps 1, 2, 3, ... (counted in a
-- value state). Emits "<key> ok <step>" per record; any mismatch raises (the
-- job fails with the message).
--  1: writes every value below to a value state each, to a list state (in
--     order) and to a map state under keys of several types; reads some back
--     in the same call.
--  2: reads everything back (types exact: integer vs float), then removes,
--     clears and trims.
--  3: checks what step 2 removed is gone, clears the list.
--  4 and later: everything is empty.
local null = sluice.json.null
local VALUES = {
  {"int", 42}, {"neg", -7}, {"min", math.mininteger}, {"max", math.maxinteger},
  {"zero", 0}, {"float", 2.0}, {"frac", -0.5}, {"negzero", -0.0}, {"huge", math.huge},
  {"tiny", 5e-324}, {"t", true}, {"f", false}, {"str", "plain"}, {"nul", "a\0b\0\0c"},
  {"empty", ""}, {"bin", "\255\254\0\1"},
  {"tbl", {a = 1, b = {1, 2.5, "x", true, false}, c = {d = {e = "deep", n = null}}, s = "a\0b"}},
  {"arr", {10, 20, 30}}, {"emptytbl", {}},
}
-- map keys: {key, value}; 1, "1" and 1.5 are distinct keys; 3.0 is the key 3
-- (as in a Lua table); a table key is compared by its JSON text.
local MAP = {
  {1, "int one"}, {"1", "string one"}, {1.5, "float key"}, {true, "true key"},
  {false, "false key"}, {"a\0b", "nul key"}, {3.0, "three"}, {-2, {nested = {1, 2}}},
  {{x = 1}, "table key"}, {"", "empty key"},
}

local count, list, map, vs = nil, nil, nil, {}

function open(ctx)
  count = ctx:value_state("count")
  list = ctx:list_state("list")
  map = ctx:map_state("map")
  for _, e in ipairs(VALUES) do vs[e[1]] = ctx:value_state("v_" .. e[1]) end
  -- declaring the same name and kind again gives a handle to the same state
  vs.again = ctx:value_state("v_int")
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "number" then return math.type(v) .. " " .. string.format("%.17g", v) end
  if type(v) == "table" then return sluice.json.encode(v) end
  return tostring(v)
end

local function same(a, b, path)
  if type(a) ~= type(b) then error(path .. ": " .. show(a) .. " ~= " .. show(b), 0) end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) or (a ~= b and not (a ~= a and b ~= b))
        or (a == 0 and math.type(a) == "float" and 1 / a ~= 1 / b) then
      error(path .. ": " .. show(a) .. " ~= " .. show(b), 0)
    end
  elseif type(a) == "table" then
    for k, v in pairs(a) do same(v, b[k], path .. "." .. tostring(k)) end
    for k in pairs(b) do
      if a[k] == nil then error(path .. ": extra key " .. tostring(k), 0) end
    end
  elseif a ~= b then
    error(path .. ": " .. show(a) .. " ~= " .. show(b), 0)
  end
end

local function check(cond, what) if not cond then error(what, 2) end end

function process(rec, ctx)
  local step = (count:get() or 0) + 1
  count:set(step)
  check(math.type(count:get()) == "integer", "count is not an integer")
  if step == 1 then
    for _, e in ipairs(VALUES) do vs[e[1]]:set(e[2]); list:add(e[2]) end
    for _, e in ipairs(MAP) do map:put(e[1], e[2]) end
    same(vs.nul:get(), "a\0b\0\0c", "same call: nul")
    same(vs.again:get(), 42, "same call: a second handle of v_int")
    -- NaN as a value (not as a key)
    vs.frac:set(0 / 0)
    local nan = vs.frac:get()
    check(nan ~= nan and math.type(nan) == "float", "NaN did not round-trip")
    vs.frac:set(-0.5)
  elseif step == 2 then
    for _, e in ipairs(VALUES) do same(vs[e[1]]:get(), e[2], "value " .. e[1]) end
    -- list: len, get(i), get past the end, values()
    check(list:len() == #VALUES, "list:len() = " .. list:len())
    for i, e in ipairs(VALUES) do same(list:get(i), e[2], "list[" .. i .. "] " .. e[1]) end
    check(list:get(#VALUES + 1) == nil, "list:get past the end is not nil")
    same(list:values(), (function()
      local t = {}
      for i, e in ipairs(VALUES) do t[i] = e[2] end
      return t
    end)(), "list:values()")
    -- map: get each key, 3.0 and 3 meet, pairs() sees every entry
    for _, e in ipairs(MAP) do same(map:get(e[1]), e[2], "map[" .. show(e[1]) .. "]") end
    same(map:get(3), "three", "map[3] (written as 3.0)")
    same(map:get(1.0), "int one", "map[1.0]")
    same(map:get({x = 1}), "table key", "map[{x=1}]")
    check(map:get("nope") == nil, "map:get of an absent key is not nil")
    check(map:get(2) == nil, "map:get(2) is not nil")
    local n, seen_int_key = 0, false
    for k, v in map:pairs() do
      n = n + 1
      if k == 3 then check(math.type(k) == "integer", "key 3 is not an integer"); same(v, "three", "pairs[3]") end
      if k == 1 then seen_int_key = true; same(v, "int one", "pairs[1]") end
      if k == "1" then same(v, "string one", "pairs['1']") end
      if type(k) == "table" then same(k, {x = 1}, "pairs table key"); same(v, "table key", "pairs[{x=1}]") end
      -- changing the map inside the loop is allowed (pairs copied it)
      if k == true then map:put("added in loop", 1) end
    end
    check(n == #MAP, "map:pairs() gave " .. n .. " entries, expected " .. #MAP)
    check(seen_int_key, "map:pairs() has no integer key 1")
    -- removals and clears
    check(map:remove("1") == true, "map:remove of a present key is not true")
    check(map:remove("1") == false, "map:remove of an absent key is not false")
    check(map:get("1") == nil and map:get(1) == "int one", "map:remove removed the wrong key")
    vs.int:clear()
    check(vs.int:get() == nil and vs.again:get() == nil, "value:clear() left a value")
    vs.int:clear() -- clearing an absent value is fine
    list:trim_front(0)
    check(list:len() == #VALUES, "trim_front(0) changed the list")
    list:trim_front(3)
    check(list:len() == #VALUES - 3, "trim_front(3): len " .. list:len())
    same(list:get(1), VALUES[4][2], "list[1] after trim_front(3)")
  elseif step == 3 then
    check(vs.int:get() == nil, "cleared value came back")
    same(vs.str:get(), "plain", "value str in step 3")
    check(map:get("1") == nil, "removed map key came back")
    same(map:get("added in loop"), 1, "key added inside pairs()")
    map:clear()
    for _ in map:pairs() do error("map:pairs() after clear() is not empty") end
    check(list:len() == #VALUES - 3, "list len in step 3")
    list:trim_front(1000)
    check(list:len() == 0 and #list:values() == 0 and list:get(1) == nil, "trim_front(1000) left values")
    list:add("again")
    same(list:values(), {"again"}, "list after trim and add")
    list:clear()
    for _, e in ipairs(VALUES) do vs[e[1]]:clear() end
  else
    check(list:len() == 0 and next(list:values()) == nil, "list not empty in step " .. step)
    for _ in map:pairs() do error("map not empty in step " .. step) end
    for _, e in ipairs(VALUES) do check(vs[e[1]]:get() == nil, e[1] .. " not empty") end
  end
  ctx:emit(rec.key .. " ok " .. step)
end
