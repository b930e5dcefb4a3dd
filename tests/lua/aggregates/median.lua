-- The lower median of a field: the accumulator is the list of values (a
-- table that grows), merged by concatenation.
function create() return {} end
function add(acc, x)
  acc[#acc + 1] = x
  return acc
end
function merge(a, b)
  for _, x in ipairs(b) do a[#a + 1] = x end
  return a
end
function result(acc)
  if #acc == 0 then return nil end
  table.sort(acc)
  return acc[(#acc + 1) // 2]
end
