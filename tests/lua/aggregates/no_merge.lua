-- An aggregate script without merge(): refused when the job opens.
function create() return 0 end
function add(acc) return acc + 1 end
function result(acc) return acc end
