-- st:values() and st:pairs() copy a whole list / map into the task's Lua
-- state, so the memory cap bounds them. Every record but the last of a key
-- adds 1000 values of 1 KB to a list and a map (kept by the runtime, outside
-- the Lua state); a record {"copy":"values"} or {"copy":"pairs"} then copies
-- them all: with lua_memory_mb 8 and 24 MB stored, that call must fail with
-- the memory limit error. Emits "<key> <entries>" for a copy that fits.
local l, m
function open(ctx)
  l = ctx:list_state("big_list")
  m = ctx:map_state("big_map")
end
function process(rec, ctx)
  local copy = sluice.json.get(rec.value, "copy")
  if copy == "values" then
    ctx:emit(rec.key .. " " .. #l:values())
  elseif copy == "pairs" then
    local n = 0
    for _ in m:pairs() do n = n + 1 end
    ctx:emit(rec.key .. " " .. n)
  else
    local pad = string.rep("x", 1000)
    local base = l:len()
    for i = 1, 1000 do
      l:add(pad .. (base + i))
      m:put(base + i, pad)
    end
  end
end
