-- Operator state and checkpoints (run with settings.checkpoints). Input:
-- {"k":...} lines, the node has key_by: k.
--  process:  a per-key running count (value state): emits "C <key>,<count>";
--            counts this task's records in `seen` (a plain Lua variable).
--  snapshot: saves `seen` and the checkpoint id with ctx:op_state_put.
--  commit:   checks the id was snapshotted by this task, logs "task <t>
--            committed <id>".
--  open:     reads ctx:checkpoint_restored() and the saved op state back;
--            `seen` goes on from the restored value.
--  on_end:   emits "S task=<t> restored=<id> prev_seen=<s> prev_ckpt=<c>
--            seen=<seen> snapshots=<n>" (nil when absent).
local count
local seen, restored, prev_seen, prev_ckpt = 0, 0, nil, nil
local snapshots, last_snapshot = 0, 0

function open(ctx)
  count = ctx:value_state("count")
  restored = ctx:checkpoint_restored()
  prev_seen = ctx:op_state_get("seen")
  prev_ckpt = ctx:op_state_get("ckpt")
  seen = tonumber(prev_seen or "0")
  ctx:log("info", string.format("task %d opened: restored=%d prev_seen=%s prev_ckpt=%s", ctx.task,
                                restored, tostring(prev_seen), tostring(prev_ckpt)))
end

function process(rec, ctx)
  local n = (count:get() or 0) + 1
  count:set(n)
  seen = seen + 1
  ctx:emit("C " .. rec.key .. "," .. n)
end

function snapshot(ctx, id)
  assert(math.type(id) == "integer" and id > last_snapshot, "snapshot ids must increase")
  ctx:op_state_put("seen", tostring(seen))
  ctx:op_state_put("ckpt", tostring(id))
  snapshots = snapshots + 1
  last_snapshot = id
end

function commit(ctx, id)
  if id > last_snapshot then
    error(string.format("commit(%d) for a checkpoint this task never snapshotted (last %d)", id,
                        last_snapshot))
  end
  ctx:log("info", string.format("task %d committed %d", ctx.task, id))
end

function on_end(ctx)
  ctx:emit(string.format("S task=%d restored=%d prev_seen=%s prev_ckpt=%s seen=%d snapshots=%d",
                         ctx.task, restored, tostring(prev_seen), tostring(prev_ckpt), seen, snapshots))
end
