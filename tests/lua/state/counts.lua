-- Keyed state, the three kinds (the node has key_by: k). Input: {"k":"u3","v":2}.
-- Per key: a running count (value state), the last 3 values (list state) and
-- how often each value was seen (map state). For each record, emits
--   k,count,last3,distinct,times
-- last3: the key's latest (up to) 3 values, oldest first, joined by '|';
-- distinct: the key's distinct values so far; times: how often this record's
-- value was seen for the key (this one included).
local count, last, seen

function open(ctx)
  count = ctx:value_state("count")
  last = ctx:list_state("last", {ttl = "1h"})
  seen = ctx:map_state("seen", 3600000) -- a ttl in ms
end

function process(rec, ctx)
  local v = sluice.json.get(rec.value, "v") -- an integer: map keys are integers here
  local n = (count:get() or 0) + 1
  count:set(n)
  last:add(v)
  if last:len() > 3 then last:trim_front(last:len() - 3) end
  seen:put(v, (seen:get(v) or 0) + 1)
  local distinct = 0
  for _ in seen:pairs() do distinct = distinct + 1 end
  ctx:emit(string.format("%s,%d,%s,%d,%d", rec.key, n, table.concat(last:values(), "|"),
                         distinct, seen:get(v)))
end
