#!/usr/bin/env bash
# e2e: user-defined aggregate functions in the window operator (SDK 1.4), in
# C (tests/plugins/aggs.c: fixed and variable accumulators) and in Lua
# (tests/lua/aggregates/), through the real sluice binary.
#
# 1. On random input with disorder and duplicates (tests/tools/window_model.c
#    gen), every window kind: each user-defined function equals the built-in
#    it imitates on every output line (lsum = sum, isum = sum, spread =
#    max - min, vcount = count, the Lua table accumulator's n / distinct /
#    total = count / distinct / sum), so create, add, merge (sliding slices,
#    merging sessions) and result all take part; and the Lua median equals a
#    median computed here with sort and awk, for tumbling windows.
# 2. Killed at checkpoint 2 and resumed with another parallelism: the output
#    equals an uninterrupted run's (Lua and C accumulators are keyed state).
# 3. Bad input and bad functions: a record an add() refuses (C, Lua error,
#    Lua infinite loop) follows on_error, with the reason, and nothing of it
#    is counted; a failing merge or result fails the job; configuration
#    errors name the column or the function.
source "$(dirname "$0")/lib.sh"
: "${SLUICE_SOURCE_DIR:?}" "${SLUICE_TEST_PLUGIN_DIR:?}"
export LC_ALL=C

MODEL=$(window_model_bin)
cp "$SLUICE_SOURCE_DIR"/tests/lua/aggregates/*.lua .
A="$SLUICE_TEST_PLUGIN_DIR/aggs.so"
FNS="lsum=lua:lsum.lua, median=lua:median.lua, st=lua:stats.lua, isum=$A:isum, spread=$A:spread, vcount=$A:vcount"
AGG='n=count, s=sum(v), sw=sum(w), mx=max(v), mn=min(v), ds=distinct(s), ls=lsum(v), md=median(v), st=st(s, w), cs=isum(w), sp=spread(v), vc=vcount()'

dag() { # FILE "WINDOW CONFIG" [PARALLELISM [SETTINGS]]
  cat > "$1" <<YAML
name: udaf
settings: { workers: 2${4:+, $4} }
nodes:
  src:
    use: file_source
    config: { path: input.jsonl }
    event_time: { field: ts, max_out_of_order: 200ms }
  win:
    use: window
    from: src
    key_by: k
    parallelism: ${3:-2}
    config: { $2, functions: "$FNS", aggregate: "$AGG" }
  out: { use: file_sink, from: win, config: { path: out.txt } }
YAML
}

# compare LABEL FILE: every output line's user-defined results equal the
# built-ins'. num(NAME): the number after "NAME": (the first match).
compare() {
  awk -v label="$1" '
    function num(name,   m) {
      if (!match($0, "\"" name "\":-?[0-9.]+")) { print label ": no " name " in " $0; bad++; return "" }
      m = substr($0, RSTART, RLENGTH); sub(/^"[^"]*":/, "", m); return m + 0
    }
    {
      n = num("n"); s = num("s"); sw = num("sw"); mx = num("mx"); mn = num("mn"); ds = num("ds")
      ls = num("ls"); cs = num("cs"); sp = num("sp"); vc = num("vc")
      if (!match($0, /"st":\{[^}]*\}/)) { print label ": no st"; bad++; next }
      st = substr($0, RSTART, RLENGTH)
      match(st, /"n":[0-9]+/); stn = substr(st, RSTART + 4, RLENGTH - 4) + 0
      match(st, /"distinct":[0-9]+/); std = substr(st, RSTART + 11, RLENGTH - 11) + 0
      match(st, /"total":-?[0-9]+/); stt = substr(st, RSTART + 8, RLENGTH - 8) + 0
      if (sprintf("%.2f", ls) != sprintf("%.2f", s)) { print label ": lsum " ls " != sum " s ": " $0; bad++ }
      if (cs != sw) { print label ": isum " cs " != sum " sw ": " $0; bad++ }
      if (sprintf("%.2f", sp) != sprintf("%.2f", mx - mn)) { print label ": spread " sp " != max - min: " $0; bad++ }
      if (vc != n || stn != n) { print label ": vcount " vc " / st.n " stn " != count " n ": " $0; bad++ }
      if (std != ds || stt != sw) { print label ": st " st " != distinct " ds ", sum " sw; bad++ }
      lines++
    }
    END { if (bad) exit 1; if (!lines) { print label ": no output"; exit 1 } }' "$2" >&3 ||
    fail "$1: a user-defined aggregate differs from the built-in it imitates"
}

# canon FILE: sorted, with the Lua table result `st` in one key order (a Lua
# table has none: sluice.json.encode writes its keys as they come)
canon() {
  awk '{
      if (match($0, /"st":\{[^}]*\}/)) {
        st = substr($0, RSTART, RLENGTH); pre = substr($0, 1, RSTART - 1); post = substr($0, RSTART + RLENGTH)
        match(st, /"n":[0-9]+/); n = substr(st, RSTART, RLENGTH)
        match(st, /"total":-?[0-9]+/); t = substr(st, RSTART, RLENGTH)
        match(st, /"distinct":[0-9]+/); d = substr(st, RSTART, RLENGTH)
        $0 = pre "\"st\":{" n "," t "," d "}" post
      }
      print
    }' "$1" | sort
}

# 1. equal to the built-ins, every window kind, three seeds
for seed in 1 2 3; do
  "$MODEL" gen $seed 2000 7 200 5 1700000000000 > input.jsonl
  for cfg in "type: tumbling, size: 1s, offset: 300ms" "type: sliding, size: 1s, slide: 400ms" \
             "type: session, gap: 505ms"; do
    dag run.yaml "$cfg"
    rm -f out.txt
    st 0 /dev/null run.err "$SLUICE" run run.yaml
    compare "seed $seed, $cfg" out.txt
    echo "window_udaf: seed $seed, $cfg: $(wc -l < out.txt) windows, every function equals its built-in"
    case $cfg in
    *tumbling*)
      # the lower median of v per (key, window), computed independently
      awk '{
          match($0, /"ts":-?[0-9]+/); ts = substr($0, RSTART + 5, RLENGTH - 5) + 0
          match($0, /"k":"([^"\\]|\\.)*"/); k = substr($0, RSTART + 5, RLENGTH - 6)
          gsub(/[\\"]/, "", k) # the key without its escapes (the output escapes it again)
          match($0, /"v":-?[0-9.]+/); v = substr($0, RSTART + 4, RLENGTH - 4) + 0
          ws = ts - 300; ws = (ws - (ws % 1000)) + 300; if (ws > ts) ws -= 1000
          printf "%s|%.0f %.2f\n", k, ws, v
        }' input.jsonl | sort -t' ' -k1,1 -k2,2g |
        awk '{ if ($1 != g) { if (g != "") out(); g = $1; n = 0 } v[++n] = $2 }
             function out() { printf "%s %.2f\n", g, v[int((n + 1) / 2)] }
             END { out() }' | sort > median.expected
      awk '{
          match($0, /"key":"([^"\\]|\\.)*"/); k = substr($0, RSTART + 7, RLENGTH - 8)
          gsub(/[\\"]/, "", k)
          match($0, /"window_start":-?[0-9]+/); ws = substr($0, RSTART + 15, RLENGTH - 15)
          match($0, /"md":-?[0-9.]+/); md = substr($0, RSTART + 5, RLENGTH - 5) + 0
          printf "%s|%s %.2f\n", k, ws, md
        }' out.txt | sort > median.got
      diff -u median.expected median.got > median.diff ||
        { head -n 20 median.diff >&3; fail "seed $seed: the Lua median differs from sort + awk"; }
      echo "window_udaf: seed $seed: Lua median of $(wc -l < median.got) windows as computed by sort + awk"
      ;;
    esac
  done
done

# 2. killed at checkpoint 2, resumed with parallelism 3: as an uninterrupted run
"$MODEL" gen 29 6000 9 200 3 1700000000000 > input.jsonl
for cfg in "type: sliding, size: 3s, slide: 1s" "type: session, gap: 700ms"; do
  dag ref.yaml "$cfg"
  rm -f out.txt
  st 0 /dev/null ref.err "$SLUICE" run ref.yaml
  canon out.txt > expected.txt
  rm -rf ckpt out.txt*
  ck="batch_size: 32, checkpoints: { interval: 10ms, dir: ckpt }"
  dag crash.yaml "$cfg" 2 "$ck"
  set +e
  (SLUICE_FAULT=rename:2 timeout -k 5 120 "$SLUICE" run -q crash.yaml > /dev/null 2> crash.err; exit $?) 2> /dev/null
  rc=$?
  set -e
  [ $rc -eq 137 ] || { cat crash.err >&3; fail "$cfg: the job was not killed at checkpoint 2 (exit $rc)"; }
  dag resume.yaml "$cfg" 3 "$ck"
  st 0 /dev/null resume.err "$SLUICE" run resume.yaml
  grep -qF "resuming from checkpoint 2" resume.err || { cat resume.err >&3; fail "$cfg: did not resume from checkpoint 2"; }
  canon out.txt > got.txt
  diff -u expected.txt got.txt > got.diff ||
    { head -n 10 got.diff >&3; fail "$cfg: killed and resumed: output differs from an uninterrupted run"; }
  echo "window_udaf: $cfg: killed at checkpoint 2, resumed with parallelism 3: $(wc -l < got.txt) windows as uninterrupted"
done

# 3. refused records, failing functions, configuration errors
"$MODEL" gen 5 400 3 0 0 1700000000000 > input.jsonl
bad_dag() { # NAME FUNCTIONS AGGREGATE [ON_ERROR] [TYPE]
  cat > "$1.yaml" <<YAML
name: $1
nodes:
  src:
    use: file_source
    config: { path: input.jsonl }
    event_time: { field: ts }
  win:
    use: window
    from: src
    key_by: k
    ${4:+on_error: $4}
    config: { type: ${5:-tumbling}, size: 1s, ${5:+slide: 500ms,} functions: "$2", aggregate: "$3" }
  out: { use: file_sink, from: win, config: { path: $1.out } }
  dead: { use: file_sink, from: win.errors, config: { path: $1.dead, format: envelope } }
YAML
}
negatives=$(grep -c '"v":-' input.jsonl)
total=$(wc -l < input.jsonl)
bad_dag picky "p=$A:picky" "n=count, p=p(v)" dead_letter
st 0 /dev/null picky.err "$SLUICE" run picky.yaml
[ "$(wc -l < picky.dead)" -eq "$negatives" ] || fail "picky: $(wc -l < picky.dead) dead letters, expected $negatives"
grep -q 'picky: -[0-9.]* is negative' picky.dead || fail "picky: the dead letter lacks the reason: $(head -n 1 picky.dead)"
counted=$(awk '{ match($0, /"n":[0-9]+/); s += substr($0, RSTART + 4, RLENGTH - 4) } END { print s + 0 }' picky.out)
[ "$counted" -eq $((total - negatives)) ] || fail "picky: windows count $counted records, expected $((total - negatives)) (a refused record must not be counted)"
echo "window_udaf: C add() refused $negatives records: dead-lettered with the reason, none counted"

s1=$(grep -c '"s":"s1"' input.jsonl || true)
[ "$s1" -gt 0 ] || fail "the input has no s1 record"
for script in bad_add spin; do
  bad_dag $script "b=lua:$script.lua" "n=count, b=b(s)" skip sliding
  st 0 /dev/null $script.err "$SLUICE" run $script.yaml
  row $script.err win 1 "$total" '[0-9]+' "$s1" 0
  counted=$(awk '{ match($0, /"b":[0-9]+/); b = substr($0, RSTART + 4, RLENGTH - 4); match($0, /"n":[0-9]+/); if (b != substr($0, RSTART + 4, RLENGTH - 4)) bad++ } END { print bad + 0 }' $script.out)
  [ "$counted" -eq 0 ] || fail "$script: $counted windows where the Lua count differs from count"
done
bad_dag bad_add_dl "b=lua:bad_add.lua" "b=b(s)" dead_letter
st 0 /dev/null bad_add_dl.err "$SLUICE" run bad_add_dl.yaml
grep -q 'bad_add.lua:4: s1 is not welcome here' bad_add_dl.dead || fail "bad_add: the dead letter does not name bad_add.lua:4: $(head -c 300 bad_add_dl.dead)"
bad_dag spin_dl "b=lua:spin.lua" "b=b(s)" dead_letter
st 0 /dev/null spin_dl.err "$SLUICE" run spin_dl.yaml
grep -q 'instruction budget of [0-9]* per call exceeded' spin_dl.dead || fail "spin: no instruction budget message: $(head -c 300 spin_dl.dead)"
echo "window_udaf: Lua add() errors and an endless loop: $s1 records skipped or dead-lettered with script:line, the job goes on"

job_fails() { # NAME FUNCTIONS AGGREGATE EXPECTED [TYPE]
  bad_dag "$1" "$2" "$3" "" "${5:-}"
  st 1 /dev/null "$1.err" "$SLUICE" run "$1.yaml"
  grep -qF -- "$4" "$1.err" || { cat "$1.err" >&3; fail "$1: the error does not say: $4"; }
}
job_fails bad_result "r=lua:bad_result.lua" "r=r()" "aggregate function bad_result.lua, result(): "
job_fails keeps_fn "f=lua:keeps_function.lua" "f=f()" "the accumulator holds a function: keep only numbers, strings, booleans and tables"
job_fails bad_merge "m=$A:bad_merge" "m=m(w)" "bad_merge: merge always fails" sliding
job_fails no_merge "m=lua:no_merge.lua" "m=m()" "function 'm' (lua:no_merge.lua): "
grep -qF "merge is missing" no_merge.err || fail "no_merge: the error does not name merge"
job_fails no_file "m=lua:nope.lua" "m=m()" "function 'm' (lua:nope.lua): "
job_fails arity "i=$A:isum" "n=count, i=i()" "aggregate: column 13: i takes 1 argument, got 0"
job_fails unused "i=$A:isum, j=$A:isum" "i=i(w)" "functions: 'j' is defined but the aggregate list does not use it"
job_fails builtin "sum=lua:lsum.lua" "sum(v)" "functions: column 1: 'sum' is a built-in aggregate"
job_fails syntax "i=$A:isum, j" "i=i(w)" "expected name=REF (e.g. median=lua:median.lua)"
job_fails noagg "x=$A:nothere" "x=x(v)" "plugin 'aggs' ($A) has no aggregate function 'nothere' (it has: isum, spread, vcount, picky, bad_merge)"
cp "$SLUICE_TEST_PLUGIN_DIR/bad_agg.so" .
job_fails badso "x=./bad_agg.so:nomerge" "x=x(v)" "aggregate function 'nomerge' has no merge callback"
echo "window_udaf: failing functions and configuration errors: clear messages"
echo "window_udaf: ok"
