#!/usr/bin/env bash
# e2e: the window operator with parallelism 2 and 3 (key_by spreads the keys
# over the tasks, each task keeps its keys' windows, timers fire per task):
# for every window kind the output equals the reference model's
# (tests/tools/window_model.c) and the parallelism-1 output, byte for byte
# after sorting, and the summary shows every task of the node.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_SOURCE_DIR:?}"
export LC_ALL=C

MODEL=$(window_model_bin)

AGG='count, sum(v), min(v), max(v), avg(v), distinct(s), approx_distinct(s), top_n(s, 3), tw=top_n(s, 2, w), dk=distinct($key)'
"$MODEL" gen 17 3000 11 300 5 1700000000000 > input.jsonl
N=$(wc -l < input.jsonl)

run() { # NAME PARALLELISM "WINDOW CONFIG"
  cat > "$1.yaml" <<EOF
name: $1
settings: { workers: 2 }
nodes:
  src:
    use: file_source
    config: { path: input.jsonl }
    event_time: { field: ts, max_out_of_order: 300ms }
  win:
    use: window
    from: src
    key_by: k
    parallelism: $2
    config: { $3, aggregate: "$AGG" }
  out: { use: file_sink, from: win, config: { path: $1.out } }
EOF
  st 0 /dev/null "$1.err" "$SLUICE" run "$1.yaml"
  grep -qE "^  win +$2 +$N " "$1.err" || { cat "$1.err" >&3; fail "$1: no summary row for $2 window tasks with $N records in"; }
  sort "$1.out" > "$1.got"
}

for kind in tumbling sliding session; do
  case $kind in
  tumbling) cfg="type: tumbling, size: 2s"; margs="tumbling 2000 0" ;;
  sliding) cfg="type: sliding, size: 2s, slide: 500ms, offset: 250ms"; margs="sliding 2000 500 250" ;;
  session) cfg="type: session, gap: 333ms"; margs="session 333" ;;
  esac
  "$MODEL" expect $margs < input.jsonl | sort > $kind.expected
  run ${kind}_p1 1 "$cfg"
  for p in 2 3; do
    run ${kind}_p$p $p "$cfg"
    cmp -s ${kind}_p1.got ${kind}_p$p.got ||
      fail "$kind: parallelism $p differs from parallelism 1: $(diff ${kind}_p1.got ${kind}_p$p.got | head -n 4)"
  done
  diff -u $kind.expected ${kind}_p1.got > $kind.diff || { head -n 20 $kind.diff >&3; fail "$kind: output differs from the model"; }
  echo "window_parallel: $kind: parallelism 1, 2 and 3 give the model's $(wc -l < $kind.expected) windows"
done
echo "window_parallel: ok"
