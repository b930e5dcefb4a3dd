-- Fails the records whose n is a multiple of 7 (a Lua runtime error naming
-- this file and line), passes the others through with a header added.
function process(rec, ctx)
  local v = sluice.json.decode(rec.value)
  if v.n % 7 == 0 then
    error("poison n=" .. v.n)
  end
  ctx:emit(rec.value, rec.key, rec.ts, {via = "lua"})
end
