-- Several arguments and a table accumulator: the count, the distinct
-- values of the first argument (as a set) and the sum of the second.
function create() return { n = 0, seen = {}, total = 0 } end
function add(acc, s, w)
  acc.n = acc.n + 1
  acc.seen[s] = true
  acc.total = acc.total + (w or 0)
  return acc
end
function merge(a, b)
  a.n = a.n + b.n
  for s in pairs(b.seen) do a.seen[s] = true end
  a.total = a.total + b.total
  return a
end
function result(acc)
  local d = 0
  for _ in pairs(acc.seen) do d = d + 1 end
  return { n = acc.n, distinct = d, total = acc.total }
end
