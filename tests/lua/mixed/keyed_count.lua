-- After key_by with parallelism 2: counts records per key in this task's own
-- state (one lua_State per task) and emits, at the end, one record per key:
-- {"key":k,"count":c,"task":ctx.task,"parallelism":ctx.parallelism,"total":t}
-- where total is what this task saw in all.
local counts, total = {}, 0

function process(rec, ctx)
  local k = sluice.json.decode(rec.value).k
  counts[k] = (counts[k] or 0) + 1
  total = total + 1
end

function on_end(ctx)
  local keys = {}
  for k in pairs(counts) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    ctx:emit(sluice.json.encode({key = k, count = counts[k], task = ctx.task,
                                 parallelism = ctx.parallelism, total = total}), k)
  end
end
