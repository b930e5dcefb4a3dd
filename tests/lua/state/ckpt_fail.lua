-- config.fail_in: "snapshot" or "commit" raises there (the job fails);
-- "put_table" passes a table to ctx:op_state_put (a snapshot error too).
local where
function open(ctx) where = ctx.config.fail_in end
function process(rec, ctx) ctx:emit(rec.value) end
function snapshot(ctx, id)
  if where == "snapshot" then error("snapshot boom " .. id) end
  if where == "put_table" then ctx:op_state_put("t", {1, 2}) end
end
function commit(ctx, id)
  if where == "commit" then error("commit boom " .. id) end
end
