-- process_batch that fails its whole call when the batch holds n ==
-- config.poison (on_error applies to every record of the call); passes the
-- other records through unchanged.
function process_batch(recs, ctx)
  for i = 1, #recs do
    local v = sluice.json.decode(recs[i].value)
    if v.n == ctx.config.poison then error("poison batch (n=" .. v.n .. ")") end
  end
  for i = 1, #recs do ctx:emit(recs[i].value) end
end
