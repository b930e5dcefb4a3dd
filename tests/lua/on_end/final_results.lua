-- Collects one entry per record and emits them all in on_end: a budget at a
-- time (returning true while more remain) unless config all_at_once is set.
local seen, next_i = {}, 1

function process(rec, ctx)
  seen[#seen + 1] = rec.value
end

function on_end(ctx)
  local last = #seen
  if not ctx.config.all_at_once then
    last = math.min(#seen, next_i + ctx:budget() - 1)
  end
  for i = next_i, last do ctx:emit(seen[i]) end
  next_i = last + 1
  return next_i <= #seen
end
