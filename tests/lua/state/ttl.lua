-- TTL (processing time since the last write). Input: {"k":"a","step":1} for
-- each key, later {"k":"a","step":2}. Step 1 writes every state (and reads the
-- short-lived ones back in the same call: not expired yet). Step 2 first waits
-- 50 ms of wall-clock time (before any state call: the host takes the time at
-- the record's first state call), then reads: states with a 5 ms TTL are gone,
-- those with a TTL of an hour, ten minutes or none are there. Emits
--   k step=1 sv=x sl=2 sm=m          or
--   k step=2 sv=nil sl=0 sl1=nil slv=0 sm=nil smn=0 lv=y lm=z nv=w
local sv, sl, sm, lv, lm, nv

function open(ctx)
  sv = ctx:value_state("sv", 5)                  -- ttl 5 ms, as a number
  sl = ctx:list_state("sl", {ttl = "5ms"})
  sm = ctx:map_state("sm", {ttl = 5})
  lv = ctx:value_state("lv", {ttl = "1h"})
  lm = ctx:map_state("lm", {ttl = "10m"})
  nv = ctx:value_state("nv", {ttl = 0})           -- never expires
end

local function s(v) return v == nil and "nil" or tostring(v) end

function process(rec, ctx)
  local step = sluice.json.get(rec.value, "step")
  if step == 1 then
    sv:set("x")
    sl:add(1); sl:add(2)
    sm:put("a", "m")
    lv:set("y")
    lm:put("a", "z")
    nv:set("w")
    ctx:emit(string.format("%s step=1 sv=%s sl=%d sm=%s", rec.key, s(sv:get()), sl:len(), s(sm:get("a"))))
  else
    local t0 = ctx:now()
    while ctx:now() - t0 < 50 do end
    local n = 0
    for _ in sm:pairs() do n = n + 1 end
    ctx:emit(string.format("%s step=2 sv=%s sl=%d sl1=%s slv=%d sm=%s smn=%d lv=%s lm=%s nv=%s",
                           rec.key, s(sv:get()), sl:len(), s(sl:get(1)), #sl:values(),
                           s(sm:get("a")), n, s(lv:get()), s(lm:get("a")), s(nv:get())))
  end
end
