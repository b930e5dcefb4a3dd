-- result() returns a function, which JSON cannot hold: the job fails.
function create() return 0 end
function add(acc) return acc + 1 end
function merge(a, b) return a + b end
function result(acc) return function() end end
