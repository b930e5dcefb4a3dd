-- C -> Lua -> C: the input is good:seq's {"n":..,"k":..} uppercased by
-- good:upper, i.e. {"N":n,"K":"K<n mod 10>"}. Keeps n divisible by
-- config.divisor and emits {"n":n,"k":k,"sq":n*n} keyed by k, the input ts
-- kept. Counts its calls and records (the summary shows batching).
local decode, encode = sluice.json.decode, sluice.json.encode
local divisor, calls, records

function open(ctx)
  divisor = ctx.config.divisor
  calls, records = ctx:counter("calls"), ctx:counter("records")
end

function process_batch(recs, ctx)
  calls:add()
  local n = #recs
  records:add(n)
  for i = 1, n do
    local r = recs[i]
    local v = decode(r.value)
    if v.N % divisor == 0 then
      ctx:emit(encode({n = v.N, k = v.K, sq = v.N * v.N}), v.K)
    end
  end
end
