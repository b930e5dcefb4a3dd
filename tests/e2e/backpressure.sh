# A fast source feeding a deliberately slow sink through small channels:
# nothing is lost, order is kept, and the source never runs further ahead of
# the sink than the channels allow (memory bounded by configuration, not by
# the input size): the same bound for 5k and 20k records.
source "$(dirname "$0")/lib.sh"
PLUG="$SLUICE_TEST_PLUGIN_DIR/slow.so"
CAP=2
BATCH=64
BOUND=$(( (CAP + 4) * BATCH ))

run_one() {
  local count=$1
  cat > bp.yaml <<YAML
name: backpressure
settings: { workers: 2, channel_capacity: $CAP, batch_size: $BATCH }
nodes:
  src: { use: "$PLUG:fast_source", config: { count: $count } }
  sink: { use: "$PLUG:slow_sink", from: src, partition: rebalance, config: { delay_us: 20, report: report-$count.txt } }
YAML
  "$SLUICE" run -q bp.yaml
  cat "report-$count.txt"
  local consumed lead order
  consumed=$(sed -E 's/.*consumed=([0-9]+).*/\1/' "report-$count.txt")
  lead=$(sed -E 's/.*max_lead=([0-9]+).*/\1/' "report-$count.txt")
  order=$(sed -E 's/.*in_order=([0-9]+).*/\1/' "report-$count.txt")
  [ "$consumed" -eq "$count" ] || fail "lost records: consumed $consumed of $count"
  [ "$order" -eq 1 ] || fail "records out of order"
  [ "$lead" -le "$BOUND" ] || fail "source ran $lead records ahead of the sink (bound $BOUND)"
  # The source really was held back: it ran ahead by at least a batch.
  [ "$lead" -ge "$BATCH" ] || fail "lead $lead is implausibly small: was the sink slow at all?"
}
run_one 5000
run_one 20000

# A sink that stalls for 300 ms every 2000 records: the host tells the source
# to hold back (its output full for 100 ms) and to go on, alternately; the
# source fails the job if told the same twice or polled while held back.
# The stalls at 2000, 4000, 6000 and 8000 block the source (it runs at most
# BOUND records ahead); the one at 10000 comes after it has ended.
cat > stall.yaml << YAML
name: stall
settings: { workers: 2, channel_capacity: $CAP, batch_size: $BATCH }
nodes:
  src: { use: "$PLUG:fast_source", config: { count: 10000 } }
  sink:
    use: "$PLUG:slow_sink"
    from: src
    partition: rebalance
    config: { delay_us: 1, stall_every: 2000, stall_ms: 300, report: report-stall.txt }
YAML
st 0 stall.out stall.err "$SLUICE" run stall.yaml
grep -q "consumed=10000 .*in_order=1" report-stall.txt || fail "stall: $(cat report-stall.txt)"
holds=$(holds stall.err)
# (a worker descheduled for 100 ms on a loaded machine may add one)
[ "$holds" -ge 4 ] && [ "$holds" -le 8 ] ||
  { cat stall.err >&3; fail "stall: told to hold back $holds times, expected 4"; }
echo "backpressure: ok (bound $BOUND records; held back during the 4 stalls)"
