-- A sum, as a Lua aggregate function (compared with the built-in sum).
function create() return 0 end
function add(acc, x) return acc + x end
function merge(a, b) return a + b end
function result(acc) return acc end
