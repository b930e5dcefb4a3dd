#!/usr/bin/env bash
# e2e: the window operator keeps everything in keyed state and timers, so a
# job killed mid-run resumes exactly. The job (file_source -> window ->
# file_sink, exactly-once) is killed by SLUICE_FAULT at checkpoint 2 with
# windows open (panes, distinct values, top_n counts, HyperLogLog registers
# and timers in the checkpoint), then resumed, also with another
# parallelism (2 -> 3 on the memory backend, 2 -> 1 on RocksDB: the state
# and timers follow their key groups). The committed output equals the reference model's
# (tests/tools/window_model.c), no window lost or doubled.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_SOURCE_DIR:?}"
export LC_ALL=C

MODEL=$(window_model_bin)

AGG='count, sum(v), min(v), max(v), avg(v), distinct(s), approx_distinct(s), top_n(s, 3), tw=top_n(s, 2, w), dk=distinct($key)'
"$MODEL" gen 29 6000 9 200 3 1700000000000 > input.jsonl

dag() { # FILE BACKEND PARALLELISM "WINDOW CONFIG"
  cat > "$1" <<EOF
name: wck
settings: { workers: 2, batch_size: 32, state: { backend: $2 }, checkpoints: { interval: 10ms, dir: ckpt } }
nodes:
  src:
    use: file_source
    config: { path: input.jsonl }
    event_time: { field: ts, max_out_of_order: 200ms }
  win:
    use: window
    from: src
    key_by: k
    parallelism: $3
    config: { $4, aggregate: "$AGG" }
  out: { use: file_sink, from: win, config: { path: out.txt } }
EOF
}

for kind in tumbling sliding; do
  case $kind in
  tumbling) cfg="type: tumbling, size: 2s"; margs="tumbling 2000 0" ;;
  sliding) cfg="type: sliding, size: 3s, slide: 1s"; margs="sliding 3000 1000 0" ;;
  esac
  "$MODEL" expect $margs < input.jsonl | sort > $kind.expected
  for run in memory:3 rocksdb:1; do
    backend=${run%:*} par=${run#*:}
    {
      rm -rf ckpt out.txt*
      dag crash.yaml $backend 2 "$cfg"
      set +e
      # (in a subshell, so that bash's "Killed" notice goes nowhere)
      (SLUICE_FAULT=rename:2 timeout -k 5 120 "$SLUICE" run -q crash.yaml > /dev/null 2> crash.err; exit $?) 2> /dev/null
      rc=$?
      set -e
      [ $rc -eq 137 ] || { cat crash.err >&3; fail "$kind/$backend: the job was not killed at checkpoint 2 (exit $rc)"; }
      committed=$(cat out.txt 2> /dev/null | wc -l)
      dag resume.yaml $backend $par "$cfg"
      st 0 /dev/null resume.err "$SLUICE" run resume.yaml
      grep -qF "resuming from checkpoint 2" resume.err || { cat resume.err >&3; fail "$kind/$backend: did not resume from checkpoint 2"; }
      sort out.txt > got.txt
      diff -u $kind.expected got.txt > got.diff ||
        { head -n 20 got.diff >&3; fail "$kind/$backend: killed, resumed with parallelism $par: output differs from the model"; }
      echo "window_checkpoint: $kind/$backend: killed at checkpoint 2 ($committed results committed), resumed with parallelism $par: exact"
    }
  done
done
echo "window_checkpoint: ok"
