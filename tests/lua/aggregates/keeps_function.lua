-- add() puts a function into the accumulator, which keyed state cannot keep.
function create() return {} end
function add(acc) acc.f = print; return acc end
function merge(a, b) return a end
function result(acc) return 0 end
