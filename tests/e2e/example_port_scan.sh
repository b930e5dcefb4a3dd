#!/usr/bin/env bash
# e2e: examples/port-scan raises exactly the expected port-scan alerts.
#
#  1. gen_traffic.awk writes connections.jsonl (twice: it must be
#     deterministic); the file holds the planted scanners it documents;
#  2. an independent reference, in awk from connections.jsonl: every 5-minute
#     window sliding by 30 s of every source IP, its distinct destination
#     IPs, and the windows with more than the threshold;
#  3. the DAG as committed (threshold 100): alerts.jsonl must hold exactly the
#     reference's alerts (source, window, count), the three planted scanners
#     must be their only sources, and the busy proxy (90 destinations) none;
#  4. the same DAG with threshold 250 (from the node's config): again exactly
#     the reference for 250.
# Outputs are compared sorted (LC_ALL=C).
set -euo pipefail

: "${SLUICE:?SLUICE (the sluice binary) must be set}"
: "${SLUICE_SOURCE_DIR:?}"
: "${SLUICE_SCRATCH:?}"
export LC_ALL=C

EX="$SLUICE_SOURCE_DIR/examples/port-scan"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

rm -rf "$SLUICE_SCRATCH"
mkdir -p "$SLUICE_SCRATCH"
cd "$SLUICE_SCRATCH"

# 1. The traffic.
awk -f "$EX/gen_traffic.awk" > connections.jsonl
awk -f "$EX/gen_traffic.awk" > again.jsonl
cmp -s connections.jsonl again.jsonl || fail "gen_traffic.awk is not deterministic"
lines=$(wc -l < connections.jsonl)
[ "$lines" -gt 10000 ] || fail "connections.jsonl has only $lines lines"
grep -vqE '^\{"ts":[0-9]{13},"src_ip":"[0-9.]+","dst_ip":"[0-9.]+","dst_port":[0-9]+\}$' connections.jsonl &&
  fail "malformed line in connections.jsonl: $(grep -vE '^\{"ts":[0-9]{13},"src_ip":"[0-9.]+","dst_ip":"[0-9.]+","dst_port":[0-9]+\}$' connections.jsonl | head -n 1)"
for s in 10.0.9.1:300 10.0.9.2:120 10.0.9.3:514; do
  ip=${s%%:*} want=${s##*:}
  got=$(grep -c "\"src_ip\":\"$ip\"" connections.jsonl)
  [ "$got" -eq "$want" ] || fail "scanner $ip has $got connections in connections.jsonl, expected $want"
done

# 2. Reference: the windows [s, s+300000) with s a multiple of 30000 that
# contain ts are the ten s from floor(ts/30000)*30000 down by 30000.
# Prints "src window_start window_end distinct" for every window with more
# than THR distinct destinations.
reference() { # reference THR
  awk -F'"' -v thr="$1" '
    {
      ts = substr($3, 2, length($3) - 2) + 0
      src = $6; dst = $10
      last = int(ts / 30000) * 30000 # not ts % 30000: mawk computes % in 32 bits
      for (k = 0; k < 10; k++) {
        s = sprintf("%.0f", last - k * 30000) # as text: mawk would subscript 1.7e+12
        if (!((src, s, dst) in seen)) { seen[src, s, dst] = 1; n[src, s]++ }
      }
    }
    END {
      for (w in n) if (n[w] > thr) {
        split(w, p, SUBSEP)
        printf "%s %.0f %.0f %d\n", p[1], p[2], p[2] + 300000, n[w]
      }
    }' connections.jsonl | sort
}
# And the largest distinct count of every source, for the sanity checks.
max_distinct() {
  reference -1 | awk '$4 > m[$1] { m[$1] = $4 } END { for (s in m) print s, m[s] }' | sort
}
reference 100 > expected100.txt
reference 250 > expected250.txt
max_distinct > max_distinct.txt

# The reference itself must say what the example claims: only the three
# scanners exceed 100, the proxy comes close, normal hosts stay small.
[ "$(cut -d' ' -f1 expected100.txt | sort -u | tr '\n' ' ')" = "10.0.9.1 10.0.9.2 10.0.9.3 " ] ||
  fail "reference: sources above 100 are $(cut -d' ' -f1 expected100.txt | sort -u | tr '\n' ' '), expected the three scanners"
proxy=$(awk '$1 == "10.0.0.99" { print $2 }' max_distinct.txt)
[ "$proxy" -ge 80 ] && [ "$proxy" -le 100 ] || fail "reference: the proxy 10.0.0.99 peaks at $proxy distinct destinations, expected 80..100"
normal=$(awk '$1 ~ /^10\.0\.0\./ && $1 != "10.0.0.99" && $2 > m { m = $2 } END { print m + 0 }' max_distinct.txt)
[ "$normal" -le 8 ] || fail "reference: a normal host peaks at $normal distinct destinations"
[ "$(cut -d' ' -f1 expected250.txt | sort -u | tr '\n' ' ')" = "10.0.9.1 10.0.9.3 " ] ||
  fail "reference: sources above 250 are $(cut -d' ' -f1 expected250.txt | sort -u | tr '\n' ' ')"

# 3. + 4. Run the DAG; alerts.jsonl -> "src window_start window_end distinct".
run_dag() { # run_dag NAME DAG THR
  local name=$1 dag=$2 thr=$3
  mkdir -p "$name"
  ln -sf ../connections.jsonl "$name/connections.jsonl"
  (cd "$name" && "$SLUICE" run "$dag") > "$name.log" 2>&1 || {
    cat "$name.log" >&2
    fail "$name: sluice run $dag failed"
  }
  [ -f "$name/alerts.jsonl" ] || fail "$name: no alerts.jsonl in the working directory"
  local re='^\{"alert":"port_scan","src_ip":"[0-9.]+","window_start":[0-9]+,"window_end":[0-9]+,"distinct_dst_ips":[0-9]+,"distinct_dst_ports":[0-9]+,"connections":[0-9]+,"threshold":'"$thr"'\}$'
  if grep -vqE "$re" "$name/alerts.jsonl"; then
    fail "$name: unexpected alert line: $(grep -vE "$re" "$name/alerts.jsonl" | head -n 1)"
  fi
  awk -F'[":,{}]+' '{ print $5, $7, $9, $11 }' "$name/alerts.jsonl" | sort > "$name.alerts.txt"
}

run_dag committed "$EX/dag.yaml" 100
diff -u expected100.txt committed.alerts.txt || fail "alerts (threshold 100) differ from the reference"

# The same DAG with another threshold: alert.lua is relative to the DAG file,
# so the copy names it by its absolute path.
sed -e 's/threshold: 100 }/threshold: 250 }/' -e "s#use: lua:alert.lua#use: lua:$EX/alert.lua#" "$EX/dag.yaml" > t250.yaml
grep -q 'threshold: 250 }' t250.yaml && grep -q "use: lua:$EX/alert.lua" t250.yaml ||
  fail "could not derive a threshold-250 variant of $EX/dag.yaml (did its layout change?)"
run_dag t250 "$PWD/t250.yaml" 250
diff -u expected250.txt t250.alerts.txt || fail "alerts (threshold 250) differ from the reference"

summary=$(awk '{ n[$1]++; if ($4 > m[$1]) m[$1] = $4 } END { for (s in n) printf "%s: %d windows, peak %d\n", s, n[s], m[s] }' expected100.txt | sort | paste -sd';' | sed 's/;/; /g')
echo "example_port_scan: ok ($(wc -l < expected100.txt) alerts at threshold 100, $(wc -l < expected250.txt) at 250; $summary)"
