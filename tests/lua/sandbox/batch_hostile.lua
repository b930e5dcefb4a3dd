-- process_batch poking at recs and rec with odd keys and operations: each
-- probe may raise or return nil, but the host must survive and the valid
-- accesses must keep working. Emits one line per call: "ok <#recs>".
function process_batch(recs, ctx)
  local probes = {
    function() return recs[0] end, function() return recs[-1] end,
    function() return recs[1.5] end, function() return recs["1"] end,
    function() return recs[math.maxinteger] end, function() return recs[math.mininteger] end,
    function() return recs[#recs + 1] end, function() return recs[1 << 20] end,
    function() return recs[(1 << 20) + 1] end, function() return recs[0/0] end,
    function() recs[1] = "x" end, function() return rawlen(recs) end,
    function() for k, v in pairs(recs) do end end, function() for i, r in ipairs(recs) do local _ = r.value end end,
    function() return recs[1][1] end, function() return recs[1][{}] end, function() return recs[1][""] end,
    function() return recs[1].headers.x end, function() return tostring(recs[1]) .. tostring(recs) end,
    function() return recs[1] == recs[1] end, function() return recs[1] < recs[1] end,
    function() return sluice.json.null.value end, function() return sluice.json.null.key end,
    function() return tostring(sluice.json.null) end, function() return sluice.json.encode({recs[1]}) end,
    function() return sluice.json.encode({sluice.json.null}) end,
    function() local t = {} t[recs[1]] = 1 return t[recs[1]] end,
    function() return string.format("%s %d", recs[1], #recs) end,
    function() return getmetatable(recs) end, function() return getmetatable(recs[1]) end,
  }
  for _, p in ipairs(probes) do pcall(p) end
  local n = 0
  for i = 1, #recs do if #recs[i].value > 0 then n = n + 1 end end
  ctx:emit("ok " .. n)
end
