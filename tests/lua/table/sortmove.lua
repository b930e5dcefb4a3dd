-- Self-check of the sandbox's table.sort and table.move (lua/lua_table.c):
-- emits "ok" or raises with what went wrong.
local function check(cond, msg) if not cond then error(msg, 2) end end

local function sorted(t, lt)
  lt = lt or function(a, b) return a < b end
  for i = 2, #t do check(not lt(t[i], t[i - 1]), "not sorted at " .. i) end
end

function process(rec, ctx)
  local seed = 12345
  local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n end
  for size = 0, 200 do
    local t, count = {}, {}
    for i = 1, size do local v = rnd(50); t[i] = v; count[v] = (count[v] or 0) + 1 end
    table.sort(t)
    sorted(t)
    check(#t == size, "size changed")
    for i = 1, size do count[t[i]] = count[t[i]] - 1 end
    for _, c in pairs(count) do check(c == 0, "elements lost or duplicated") end
    table.sort(t, function(a, b) return a > b end)
    sorted(t, function(a, b) return a > b end)
  end
  local s = { "pear", "apple", "fig", "banana" }
  table.sort(s)
  check(table.concat(s, ",") == "apple,banana,fig,pear", "strings")
  -- __lt metamethods are honoured
  local mt = { __lt = function(a, b) return a.v < b.v end }
  local o = {}
  for i = 1, 50 do o[i] = setmetatable({ v = rnd(1000) }, mt) end
  table.sort(o)
  for i = 2, 50 do check(o[i - 1].v <= o[i].v, "__lt order") end
  check(not pcall(table.sort, { 1, "x", 2 }), "mixed types must raise")
  check(not pcall(table.sort, { 3, 1 }, 42), "a non-function comparator must raise")
  -- move: forward, backward (overlap), other table, empty range, return value
  local a = { 1, 2, 3, 4, 5 }
  check(table.move(a, 1, 3, 3) == a, "move returns the destination")
  check(table.concat(a, ",") == "1,2,1,2,3", "overlapping move right: " .. table.concat(a, ","))
  a = { 1, 2, 3, 4, 5 }
  table.move(a, 3, 5, 1)
  check(table.concat(a, ",") == "3,4,5,4,5", "overlapping move left")
  local b = {}
  check(table.move({ 7, 8, 9 }, 1, 3, 2, b) == b, "move into another table returns it")
  check(b[1] == nil and b[2] == 7 and b[4] == 9, "move into another table")
  check(table.move(a, 5, 1, 1) == a, "empty range")
  check(not pcall(table.move, a, math.mininteger, 1, 1), "too many elements must raise")
  ctx:emit("ok")
end
