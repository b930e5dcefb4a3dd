# Shared by the Kafka exactly-once tests (sourced after lib.sh): a dev
# cluster, the reference records, a job writing them exactly once, and the
# verifying consumer (tests/tools/kafka_verify.c).
: "${SLUICE_BUILD_DIR:?}"
VERIFY="$SLUICE_BUILD_DIR/tests/kafka_verify"
[ -x "$VERIFY" ] || fail "no $VERIFY (built with the tests)"

# kafka_dev_start TOPIC...: `sluice kafka-dev` with topic T:4 and its commit
# topic sluice.T.commits:1 for each T (extra kafka-dev options in KD_OPTS);
# sets BS. Stopped at exit.
kafka_dev_start() {
  local topics="" t
  for t in "$@"; do topics="$topics --topic $t:4 --topic sluice.$t.commits:1"; done
  # shellcheck disable=SC2086
  "$SLUICE" kafka-dev ${KD_OPTS:-} $topics --write boot.txt > kd.out 2> kd.err &
  KD_PID=$!
  trap 'kill -9 $KD_PID 2> /dev/null || true' EXIT
  for _ in $(seq 200); do [ -s boot.txt ] && break; sleep 0.1; done
  [ -s boot.txt ] || fail "kafka-dev wrote no address"
  BS=$(cat boot.txt)
}

# reference: the generator's 30000 records, sorted, in ref.sorted.
reference() { generated ref 30000 5; }

# job NAME BROKERS [EXTRA CONFIG OF k]: topic NAME, transactional id sluice.NAME
job() {
  cat > "$1.yaml" << YAML
name: $1
settings:
  workers: 2
  checkpoints: { interval: 100ms, dir: ./ckpt-$1, keep: 3 }
nodes:
  gen: { use: generator, config: { count: 30000, rate: 30000, seed: 5 } }
  k:
    use: kafka_sink
    from: gen
    parallelism: 2
    config: { brokers: "$2", topic: $1, delivery: exactly_once, transactional_id: sluice.$1${3:+, $3} }
YAML
}

# verify NAME [BROKERS]: what read_committed shows of topic NAME is the reference.
verify() {
  local name=$1 bs=${2:-$BS}
  if [ "$bs" = "$BS" ]; then
    "$VERIFY" "$bs" "$name" "sluice.$name.commits" "sluice.$name" > "$name.got" 2> "$name.verify"
  else
    "$VERIFY" "$bs" "$name" --read-committed > "$name.got" 2> "$name.verify"
  fi
  sort "$name.got" > "$name.sorted"
  if ! cmp -s ref.sorted "$name.sorted"; then
    echo "  $(cat "$name.verify"); reference $(wc -l < ref.sorted), got $(wc -l < "$name.sorted")," \
      "$(uniq -d "$name.sorted" | wc -l) duplicated, $(comm -23 ref.sorted "$name.sorted" | wc -l) missing" >&3
    fail "$name: what read_committed shows is not the generator's records exactly once"
  fi
}

# until_done NAME: run the job until it completes (exit 0).
until_done() {
  for _ in $(seq 10); do
    set +e
    timeout -k 5 120 "$SLUICE" run "$1.yaml" >> "$1.out" 2>> "$1.err"
    local rc=$?
    set -e
    [ "$rc" -eq 0 ] && return 0
    [ "$rc" -ge 128 ] && [ "$rc" -ne 137 ] && { tail -20 "$1.err" >&3; fail "$1: crashed ($rc)"; }
  done
  tail -20 "$1.err" >&3
  fail "$1: did not complete in 10 runs"
}

