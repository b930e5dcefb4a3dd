#!/usr/bin/env bash
# e2e: state for Lua operators (SDK 1.2) through the real sluice binary.
# Scripts in tests/lua/state/; expected outputs computed here with awk.
#
#  1. Keyed state, three kinds: file_source -> lua:counts.lua (key_by k) ->
#     file_sink. Per key a running count (value), the last 3 values (list),
#     distinct values and repeats (map); equal to awk's, with parallelism 1
#     and 2 (the state follows the keys). The same for the example of
#     docs/lua.md (generator clicks -> lua:user_activity.lua, key_by user_id).
#  2. A script with process and process_batch that declares state runs per
#     record through process; one with process_batch only fails to open.
#  3. Type round trips (integer vs float, -0.0, NaN, inf, booleans, strings
#     with NUL bytes, nested tables, map keys of each type), value clear, list
#     get/len/values/trim_front/clear, map get/put/remove/pairs/clear, checked
#     by types.lua itself over several records per key.
#  4. TTL: states with a 5 ms TTL are gone 50 ms later, longer ones are not.
#  5. Errors: keyed state used in open / on_end / close / snapshot, declared
#     outside open, declared without key_by (the job fails naming the node),
#     wrong arguments (args.lua checks each message); st:values() and
#     st:pairs() of more than lua_memory_mb fail with the memory limit.
#  6. Checkpoints: snapshot() saves operator state, commit() is called for the
#     final checkpoint; a second run of the same DAG resumes from it: open()
#     sees checkpoint_restored() = that id and what snapshot() put, and the
#     keyed running counts go on from the first run's. Errors in snapshot and
#     commit fail the job.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_SOURCE_DIR:?}"
export LC_ALL=C
S="$SLUICE_SOURCE_DIR/tests/lua/state"

# has FILE TEXT: FILE contains TEXT (fixed string).
has() { grep -qF -- "$2" "$1" || { sed 's/^/    | /' "$1" >&3; fail "$1 does not say: $2"; }; }

# ------------------------------------------------------------ 1. three kinds
N=20000
awk -v n=$N -v out=counts.expected 'BEGIN {
  for (i = 0; i < n; i++) {
    k = "u" (i * 7) % 13; v = (i * i + 3 * i) % 7
    printf "{\"k\":\"%s\",\"v\":%d}\n", k, v
    c[k]++
    # last 3 values of k
    l3[k] = (c[k] == 1) ? v "" : l3[k] "|" v
    if (split(l3[k], parts, "|") > 3) l3[k] = parts[2] "|" parts[3] "|" parts[4]
    if (!((k, v) in seen)) d[k]++
    seen[k, v]++
    printf "%s,%d,%s,%d,%d\n", k, c[k], l3[k], d[k], seen[k, v] > out
  }
}' > input.jsonl
sort counts.expected > counts.sorted

for p in 1 2; do
  cat > counts$p.yaml <<EOF
name: counts$p
settings: { workers: 2 }
nodes:
  src: { use: file_source, config: { path: input.jsonl } }
  cnt: { use: "lua:$S/counts.lua", from: src, key_by: k, parallelism: $p }
  out: { use: file_sink, from: cnt, config: { path: counts$p.out } }
EOF
  st 0 /dev/null counts$p.err "$SLUICE" run counts$p.yaml
  sort counts$p.out > counts$p.got
  diff -u counts.sorted counts$p.got > counts$p.diff ||
    { head -n 20 counts$p.diff >&3; fail "counts (parallelism $p): output differs from awk's"; }
  row counts$p.err cnt $p $N $N 0 0
done
echo "lua_state: value/list/map state ok ($N records, parallelism 1 and 2)"

# The example of docs/lua.md: generator clicks -> lua:user_activity.lua
# (key_by user_id); the same generator's records, written out, give awk's.
cat > activity.yaml <<EOF
name: activity
settings: { workers: 2 }
nodes:
  clicks: { use: generator, config: { kind: clicks, count: 5000, users: 50, seed: 3 } }
  activity: { use: "lua:$S/user_activity.lua", from: clicks, key_by: user_id, parallelism: 2 }
  out: { use: file_sink, from: activity, config: { path: activity.out } }
  raw: { use: file_sink, from: clicks, config: { path: clicks.jsonl } }
EOF
st 0 /dev/null activity.err "$SLUICE" run activity.yaml
sed 's/.*"user_id":"\([^"]*\)".*"product_id":"\([^"]*\)".*/\1 \2/' clicks.jsonl |
  awk '{ c[$1]++; r[$1] = (c[$1] == 1) ? $2 : r[$1] "|" $2
         if (split(r[$1], p, "|") > 3) r[$1] = p[2] "|" p[3] "|" p[4]
         print $1 "," c[$1] "," r[$1] }' | sort > activity.expected
[ "$(wc -l < activity.expected)" -eq 5000 ] || fail "activity: $(wc -l < activity.expected) generator records"
sort activity.out > activity.got
diff -u activity.expected activity.got > activity.diff ||
  { head -n 20 activity.diff >&3; fail "the docs example (user_activity.lua) differs from awk's"; }

# ------------------------------------------------------------ 2. batching
cat > both.yaml <<EOF
name: both
nodes:
  src: { use: file_source, config: { path: input.jsonl } }
  both: { use: "lua:$S/both.lua", from: src, key_by: k }
  out: { use: file_sink, from: both, config: { path: both.out } }
EOF
st 0 /dev/null both.err "$SLUICE" run both.yaml
awk -F'"' '{ c[$4]++; print "process," $4 "," c[$4] }' input.jsonl | sort > both.expected
sort both.out > both.got
diff -u both.expected both.got > both.diff ||
  { head -n 20 both.diff >&3; fail "process + process_batch + state: not every record went through process"; }

cat > batch_only.yaml <<EOF
name: batch_only
nodes:
  src: { use: file_source, config: { path: input.jsonl } }
  bo: { use: "lua:$S/batch_only.lua", from: src, key_by: k }
  out: { use: null_sink, from: bo }
EOF
st 1 /dev/null batch_only.err "$SLUICE" run batch_only.yaml
has batch_only.err "node 'bo' (operator 'script'"
has batch_only.err "the script declares keyed state but defines only process_batch"
echo "lua_state: batching off with state ok"

# ------------------------------------------------------------ 3. types
awk 'BEGIN { for (s = 1; s <= 5; s++) for (k = 0; k < 7; k++) printf "{\"k\":\"t%d\"}\n", k }' > types.jsonl
awk 'BEGIN { for (s = 1; s <= 5; s++) for (k = 0; k < 7; k++) printf "t%d ok %d\n", k, s }' | sort > types.expected
cat > types.yaml <<EOF
name: types
settings: { workers: 2 }
nodes:
  src: { use: file_source, config: { path: types.jsonl } }
  ty: { use: "lua:$S/types.lua", from: src, key_by: k, parallelism: 2 }
  out: { use: file_sink, from: ty, config: { path: types.out } }
EOF
st 0 /dev/null types.err "$SLUICE" run types.yaml
sort types.out > types.got
diff -u types.expected types.got > types.diff || { head -n 20 types.diff >&3; fail "type round trips"; }
echo "lua_state: type round trips ok"

# ------------------------------------------------------------ 4. TTL
printf '{"k":"a","step":1}\n{"k":"b","step":1}\n{"k":"c","step":1}\n{"k":"a","step":2}\n{"k":"b","step":2}\n{"k":"c","step":2}\n' > ttl.jsonl
cat > ttl.expected <<EOF
a step=1 sv=x sl=2 sm=m
b step=1 sv=x sl=2 sm=m
c step=1 sv=x sl=2 sm=m
a step=2 sv=nil sl=0 sl1=nil slv=0 sm=nil smn=0 lv=y lm=z nv=w
b step=2 sv=nil sl=0 sl1=nil slv=0 sm=nil smn=0 lv=y lm=z nv=w
c step=2 sv=nil sl=0 sl1=nil slv=0 sm=nil smn=0 lv=y lm=z nv=w
EOF
cat > ttl.yaml <<EOF
name: ttl
nodes:
  src: { use: file_source, config: { path: ttl.jsonl } }
  ttl:
    use: "lua:$S/ttl.lua"
    from: src
    key_by: k
    config: { lua_instructions: 2000000000, lua_timeout: 5s }
  out: { use: file_sink, from: ttl, config: { path: ttl.out } }
EOF
st 0 /dev/null ttl.err "$SLUICE" run ttl.yaml
diff -u ttl.expected ttl.out > ttl.diff || { cat ttl.diff >&3; fail "TTL"; }
echo "lua_state: TTL ok"

# ------------------------------------------------------------ 5. errors
head -n 50 input.jsonl > small.jsonl
# misuse WHERE STATUS [SETTINGS]
misuse() {
  cat > misuse_$1.yaml <<EOF
name: misuse_$1
settings: { ${3:-} }
nodes:
  src: { use: file_source, config: { path: small.jsonl } }
  bad: { use: "lua:$S/misuse.lua", from: src, key_by: k, config: { where: $1 } }
  out: { use: null_sink, from: bad }
EOF
  st "$2" /dev/null misuse_$1.err "$SLUICE" run misuse_$1.yaml
}
misuse open 1
has misuse_open.err "node 'bad' (operator 'script' of plugin"
has misuse_open.err "open failed: "
has misuse_open.err "misuse.lua:14: value state 'count': get() is only allowed in process(rec, ctx), where a record's key is current (called in open)"
misuse on_end 1
has misuse_on_end.err "on_end failed: "
has misuse_on_end.err "misuse.lua:24: value state 'count': get() is only allowed in process(rec, ctx), where a record's key is current (called in on_end)"
misuse close 0
has misuse_close.err "close: "
has misuse_close.err "get() is only allowed in process(rec, ctx), where a record's key is current (called in close)"
misuse declare 1
has misuse_declare.err "record at offset"
has misuse_declare.err "misuse.lua:18: ctx:value_state('late'): keyed state is declared in open(ctx) only (called in process)"
misuse declare_end 1
has misuse_declare_end.err "misuse.lua:25: ctx:list_state('late'): keyed state is declared in open(ctx) only (called in on_end)"
misuse snapshot 1 "checkpoints: { interval: 50ms, dir: ./ckpt_misuse }"
has misuse_snapshot.err "node 'bad'"
has misuse_snapshot.err "misuse.lua:33: value state 'count': set() is only allowed in process(rec, ctx), where a record's key is current (called in snapshot)"

cat > nokey.yaml <<EOF
name: nokey
nodes:
  src: { use: file_source, config: { path: small.jsonl } }
  nokey: { use: "lua:$S/counts.lua", from: src }
  out: { use: null_sink, from: nokey }
EOF
st 1 /dev/null nokey.err "$SLUICE" run nokey.yaml
has nokey.err "node 'nokey' (operator 'script' of plugin"
has nokey.err "counts.lua:11: ctx:value_state('count'): keyed state needs the node to have key_by"
has nokey.err "keyed state needs a keyed input" # the host's own log line

cat > args.yaml <<EOF
name: args
nodes:
  src: { use: file_source, config: { path: small.jsonl } }
  args: { use: "lua:$S/args.lua", from: src, key_by: k }
  out: { use: file_sink, from: args, config: { path: args.out } }
EOF
st 0 /dev/null args.err "$SLUICE" run args.yaml
[ "$(wc -l < args.out)" -eq 50 ] || fail "args: $(wc -l < args.out) of 50 records checked"
[ -z "$(grep -v ' ok$' args.out)" ] || fail "args: unexpected output: $(grep -v ' ok$' args.out | head -n 3)"

# values() / pairs() of a list / map bigger than lua_memory_mb: the call fails
# with the memory limit (a record failure), the task goes on.
for copy in values pairs; do
  { awk 'BEGIN { for (i = 0; i < 24; i++) print "{\"k\":\"big\"}"; print "{\"k\":\"small\"}" }'
    echo "{\"k\":\"big\",\"copy\":\"$copy\"}"; echo "{\"k\":\"small\",\"copy\":\"$copy\"}"; } > big_$copy.jsonl
  cat > big_$copy.yaml <<EOF
name: big_$copy
nodes:
  src: { use: file_source, config: { path: big_$copy.jsonl } }
  big:
    use: "lua:$S/bounded.lua"
    from: src
    key_by: k
    on_error: dead_letter
    config: { lua_memory_mb: 8 }
  out: { use: file_sink, from: big, config: { path: big_$copy.out } }
  dl: { use: file_sink, from: big.errors, config: { path: big_$copy.dead, format: envelope } }
EOF
  st 0 /dev/null big_$copy.err "$SLUICE" run big_$copy.yaml
  [ "$(cat big_$copy.out)" = "small 1000" ] || fail "big $copy: output '$(cat big_$copy.out)', expected 'small 1000'"
  [ "$(wc -l < big_$copy.dead)" -eq 1 ] || fail "big $copy: $(wc -l < big_$copy.dead) dead letters, expected 1"
  has big_$copy.dead "memory limit of 8 MB exceeded (lua_memory_mb)"
  has big_$copy.dead "\"copy\":\"$copy\""
done

echo "lua_state: errors ok"

# ------------------------------------------------------------ 6. checkpoints
N1=30000
N2=10000
ck_lines() { # ck_lines FROM TO: input lines FROM..TO-1
  awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i < b; i++) printf "{\"k\":\"k%d\",\"i\":%d}\n", (i * 31) % 17, i }'
}
ck_lines 0 $N1 > ck.jsonl
cat > ck.yaml <<EOF
name: ck
settings:
  workers: 2
  checkpoints: { interval: 50ms, dir: ./ckpt }
nodes:
  src: { use: file_source, config: { path: ck.jsonl } }
  ck: { use: "lua:$S/ckpt.lua", from: src, key_by: k, parallelism: 2 }
  out: { use: stdout_sink, from: ck }
EOF
st 0 ck1.out ck1.err "$SLUICE" run ck.yaml
grep '^C ' ck1.out | sort > ck1.c
awk -F'"' '{ c[$4]++; print "C " $4 "," c[$4] }' ck.jsonl | sort > ck1.expected
diff -u ck1.expected ck1.c > ck1.diff || { head -n 20 ck1.diff >&3; fail "checkpointed run: running counts differ from awk's"; }
for t in 0 1; do
  grep -q "^S task=$t restored=0 prev_seen=nil prev_ckpt=nil seen=" ck1.out ||
    { grep '^S' ck1.out >&3; fail "run 1, task $t: no summary of a fresh start"; }
done
seen1_total=$(sed -n 's/^S .* seen=\([0-9]*\) .*/\1/p' ck1.out | awk '{ s += $1 } END { print s }')
[ "$seen1_total" -eq $N1 ] || fail "run 1: the tasks saw $seen1_total records, expected $N1"
final=$(ls -d ckpt/chk-*/MANIFEST 2> /dev/null | sort | tail -n 1 | sed 's|ckpt/chk-0*\([0-9][0-9]*\)/MANIFEST|\1|')
[ -n "$final" ] || { ls -lR ckpt >&3 2>&1 || true; fail "run 1 left no complete checkpoint in ./ckpt"; }
for t in 0 1; do has ck1.err "task $t committed $final"; done
# what each task's snapshot put: its `seen` at the final checkpoint
declare -A seen1
for t in 0 1; do seen1[$t]=$(sed -n "s/^S task=$t .* seen=\\([0-9]*\\) .*/\\1/p" ck1.out); done
echo "lua_state: run 1: final checkpoint $final, tasks saw ${seen1[0]} + ${seen1[1]} records"

# Run 2: the same DAG, more input. Whether file_source resumes after what it
# read (then run 2 sees the new lines only) or reads the file again, the
# running counts go on from run 1's final ones.
ck_lines $N1 $((N1 + N2)) >> ck.jsonl
st 0 ck2.out ck2.err "$SLUICE" run ck.yaml
has ck2.err "resuming from checkpoint $final"
for t in 0 1; do
  has ck2.err "task $t opened: restored=$final prev_seen=${seen1[$t]} prev_ckpt=$final"
  grep -q "^S task=$t restored=$final prev_seen=${seen1[$t]} prev_ckpt=$final seen=" ck2.out ||
    { grep '^S' ck2.out >&3; fail "run 2, task $t: open() did not see checkpoint $final and its op state"; }
done
run2=$(grep -c '^C ' ck2.out || true)
[ "$run2" -eq $N2 ] || [ "$run2" -eq $((N1 + N2)) ] ||
  fail "run 2 processed $run2 records: expected $N2 (resumed) or $((N1 + N2)) (replayed)"
seen2_total=$(sed -n 's/^S .* seen=\([0-9]*\) .*/\1/p' ck2.out | awk '{ s += $1 } END { print s }')
[ "$seen2_total" -eq $((N1 + run2)) ] || fail "run 2: restored op state + records = $seen2_total, expected $((N1 + run2))"
# keyed state restored: count = run 1's final count of the key + rank in run 2
awk -F'"' '{ c[$4]++ } END { for (k in c) print k, c[k] }' <(head -n $N1 ck.jsonl) > ck1.final
awk 'NR == FNR { f[$1] = $2; next }
     /^C / { split(substr($0, 3), a, ","); r[a[1]]++
             if (a[2] != f[a[1]] + r[a[1]]) { print "bad: " $0 " expected " f[a[1]] + r[a[1]]; bad++ } }
     END { exit bad > 0 }' ck1.final ck2.out > ck2.bad ||
  { head -n 10 ck2.bad >&3; fail "run 2: keyed state did not go on from run 1's checkpoint"; }
newest=$(ls -d ckpt/chk-*/MANIFEST | sort | tail -n 1 | sed 's|ckpt/chk-0*\([0-9][0-9]*\)/MANIFEST|\1|')
[ "$newest" -gt "$final" ] || fail "run 2 took no checkpoint after $final"
echo "lua_state: run 2 resumed from checkpoint $final ($run2 records, op state and keyed state restored)"

# Errors in snapshot() and commit() fail the job.
for w in snapshot commit put_table; do
  rm -rf ckpt_fail
  cat > ckfail_$w.yaml <<EOF
name: ckfail_$w
settings: { checkpoints: { interval: 50ms, dir: ./ckpt_fail } }
nodes:
  src: { use: file_source, config: { path: small.jsonl } }
  cf: { use: "lua:$S/ckpt_fail.lua", from: src, config: { fail_in: $w } }
  out: { use: null_sink, from: cf }
EOF
  st 1 /dev/null ckfail_$w.err "$SLUICE" run ckfail_$w.yaml
  has ckfail_$w.err "node 'cf'"
done
has ckfail_snapshot.err "snapshot(ctx, "
has ckfail_snapshot.err "ckpt_fail.lua:7: snapshot boom"
has ckfail_commit.err "commit(ctx, "
has ckfail_commit.err "ckpt_fail.lua:11: commit boom"
has ckfail_put_table.err "ckpt_fail.lua:8: ctx:op_state_put('t', value): value must be a string, got table (encode it, e.g. sluice.json.encode(t))"
echo "lua_state: checkpoints ok"
echo "lua_state: ok"
