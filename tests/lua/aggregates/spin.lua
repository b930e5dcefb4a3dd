-- Hostile: add() never returns for one value of s, even inside pcall; the
-- instruction budget stops it and that record fails under on_error.
function create() return 0 end
function add(acc, s)
  if s == "s1" then
    while true do pcall(function() while true do end end) end
  end
  return acc + 1
end
function merge(a, b) return a + b end
function result(acc) return acc end
