-- add() raises for one value of s: that record fails under on_error.
function create() return 0 end
function add(acc, s)
  if s == "s1" then error("s1 is not welcome here") end
  return acc + 1
end
function merge(a, b) return a + b end
function result(acc) return acc end
