#!/usr/bin/env bash
# e2e: the built-in window operator against a reference model
# (tests/tools/window_model.c), through the real sluice binary.
#
# For several seeds the model writes random input (7 keys, one of them with a
# JSON escape; timestamps out of order by up to 200 ms, within the source's
# max_out_of_order, so nothing is late; 5% of the lines duplicated; s values
# with escapes and non-ASCII text; one seed with negative timestamps) and the
# exact lines the operator must emit: one on_time result per window with
# records. Every window kind runs (tumbling with an offset, sliding with a
# slide that does not divide the size and one that does, session) with every
# aggregate (count, sum, min, max, avg, distinct, approx_distinct, top_n by
# count and by sum, an alias, distinct of the key), and the sorted output
# must equal the model's byte for byte. Nothing goes to the `late` port and
# the counter late_records is 0.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_SOURCE_DIR:?}"
export LC_ALL=C

MODEL=$(window_model_bin)

AGG='count, sum(v), min(v), max(v), avg(v), distinct(s), approx_distinct(s), top_n(s, 3), tw=top_n(s, 2, w), dk=distinct($key)'

# check NAME "WINDOW CONFIG" MODEL ARGS...
check() {
  local name=$1 cfg=$2
  shift 2
  cat > "$name.yaml" <<EOF
name: $name
settings: { workers: 2 }
nodes:
  src:
    use: file_source
    config: { path: input.jsonl }
    event_time: { field: ts, max_out_of_order: 200ms }
  win:
    use: window
    from: src
    key_by: k
    config: { $cfg, aggregate: "$AGG" }
  out: { use: file_sink, from: win, config: { path: $name.out } }
  late: { use: file_sink, from: win.late, config: { path: $name.late } }
EOF
  st 0 /dev/null "$name.err" "$SLUICE" run "$name.yaml"
  "$MODEL" expect "$@" < input.jsonl | sort > "$name.expected"
  sort "$name.out" > "$name.got"
  [ -s "$name.expected" ] || fail "$name: the model expects no output"
  diff -u "$name.expected" "$name.got" > "$name.diff" ||
    { head -n 20 "$name.diff" >&3; fail "$name: output differs from the model ($(grep -c '^-{' "$name.diff" || true) missing, $(grep -c '^+{' "$name.diff" || true) unexpected)"; }
  [ ! -s "$name.late" ] || fail "$name: records on the late port: $(head -n 3 "$name.late")"
  grep -qE '^ +counter late_records = 0$' "$name.err" || { cat "$name.err" >&3; fail "$name: counter late_records is not 0"; }
  echo "window_model: $name: $(wc -l < "$name.got") windows as the model"
}

for seed in 1 2 3; do
  start=1700000000000
  [ $seed -eq 2 ] && start=-30000 # windows around and before the epoch
  "$MODEL" gen $seed 2500 7 200 5 $start > input.jsonl
  check tumbling$seed "type: tumbling, size: 1s, offset: 300ms" tumbling 1000 300
  check sliding$seed "type: sliding, size: 1s, slide: 400ms, offset: 100ms" sliding 1000 400 100
  check hopping$seed "type: sliding, size: 3s, slide: 1s" sliding 3000 1000 0
  check session$seed "type: session, gap: 505ms" session 505
done
echo "window_model: ok"
