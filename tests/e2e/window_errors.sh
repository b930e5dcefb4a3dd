#!/usr/bin/env bash
# e2e: how the window operator refuses bad configuration and bad records.
#
#  1. open() fails, naming the node, for: a tumbling window without size,
#     slide with tumbling, slide > size, gap with sliding, size with session,
#     an unknown type, an aggregate list that does not parse (with the column
#     in the string), and a node without key_by.
#  2. A record whose needed field is missing or of the wrong type fails with
#     a message naming the field, and the node's on_error applies:
#     dead_letter sends it to `errors` with the message, skip counts it, fail
#     stops the job naming the record's offset. A failed record changes
#     nothing: the window totals hold the good records only.
source "$(dirname "$0")/lib.sh"
export LC_ALL=C

has() { grep -qF -- "$2" "$1" || { sed 's/^/    | /' "$1" >&3; fail "$1 does not say: $2"; }; }

printf '{"ts":1000,"k":"a","b":5,"d":"x"}\n' > one.jsonl

# ------------------------------------------------------ 1. configuration
bad_config() { # NAME "CONFIG" EXPECTED-MESSAGE [KEY_BY LINE]
  cat > "$1.yaml" <<EOF
name: $1
nodes:
  src: { use: file_source, config: { path: one.jsonl }, event_time: { field: ts } }
  win:
    use: window
    from: src
    ${4-key_by: k}
    config: { $2 }
  out: { use: null_sink, from: win }
EOF
  st 1 /dev/null "$1.err" "$SLUICE" run "$1.yaml"
  has "$1.err" "node 'win' (operator 'window' of plugin"
  has "$1.err" "open failed: $3"
}
bad_config nosize "type: tumbling" "tumbling windows need size (a duration > 0, e.g. size: 1m)"
bad_config slide "type: tumbling, size: 1m, slide: 30s" "slide is for sliding windows; tumbling windows take size (and offset)"
bad_config bigslide "type: sliding, size: 1m, slide: 2m" "slide (120000 ms) is larger than size (60000 ms)"
bad_config noslide "type: sliding, size: 1m" "sliding windows need slide"
bad_config gap "type: sliding, size: 1m, slide: 30s, gap: 5m" "gap is for session windows; sliding windows take size and slide"
bad_config sessize "type: session, gap: 5m, size: 1m" "session windows take gap only, not size"
bad_config nogap "type: session" "session windows need gap"
bad_config type "type: hopping, size: 1m" "type: unknown window type 'hopping' (tumbling, sliding or session)"
bad_config agg "size: 1m, aggregate: \"count, sum(bytes), mdian(latency)\"" \
  "aggregate: column 20: unknown function 'mdian' (known: count, sum, min, max, avg, distinct, approx_distinct, top_n; no plugin has an aggregate function of that name and \`functions\` does not define it)"
bad_config topn "size: 1m, aggregate: \"top_n(page, zero)\"" "aggregate: column 13: top_n: n must be an integer from 1 to 1000, got 'zero'"
bad_config dup "size: 1m, aggregate: \"count, count\"" "aggregate: column 8: duplicate output name 'count'"
bad_config nokey "size: 1m" "the window operator needs \`key_by:\` on its node" "# no key_by"
echo "window_errors: configuration errors ok"

# ------------------------------------------------------ 2. bad records
cat > records.jsonl <<'EOF'
{"ts":1000,"k":"a","b":5,"d":"x"}
{"ts":1001,"k":"a","d":"y"}
{"ts":1002,"k":"a","b":"7","d":"y"}
{"ts":1003,"k":"a","b":1,"d":null}
{"ts":1004,"k":"a","b":2,"d":{"o":1}}
{"ts":1005,"k":"a","b":1e400,"d":"y"}
{"ts":1006,"k":"a","b":3,"d":"x"}
EOF
rec_dag() { # NAME ON_ERROR
  cat > "$1.yaml" <<EOF
name: $1
nodes:
  src: { use: file_source, config: { path: records.jsonl }, event_time: { field: ts } }
  win:
    use: window
    from: src
    key_by: k
    on_error: $2
    config: { size: 1s, aggregate: "count, sum(b), distinct(d)" }
  out: { use: file_sink, from: win, config: { path: $1.out } }
  dl: { use: file_sink, from: win.errors, config: { path: $1.dead, format: envelope } }
EOF
}
rec_dag dead dead_letter
st 0 /dev/null dead.err "$SLUICE" run dead.yaml
# 1e400 is a number (inf): accepted, and the sum prints as null
echo '{"key":"a","window_start":1000,"window_end":2000,"timing":"on_time","count":3,"sum_b":null,"distinct_d":2}' > dead.expected
cmp -s dead.expected dead.out || fail "dead_letter: window result '$(cat dead.out)', expected '$(cat dead.expected)'"
[ "$(wc -l < dead.dead)" -eq 4 ] || fail "dead_letter: $(wc -l < dead.dead) records on errors, expected 4"
has dead.dead "window: field 'b' is missing (needed by sum)"
has dead.dead "window: field 'b' is not a number (it is a string) (needed by sum)"
has dead.dead "window: field 'd' is null, not a string, number or boolean (needed by distinct)"
has dead.dead "window: field 'd' is an object, not a string, number or boolean (needed by distinct)"
row dead.err win 1 7 1 0 4
echo "window_errors: bad records dead-lettered, totals untouched"

rec_dag skip skip
st 0 /dev/null skip.err "$SLUICE" run skip.yaml
cmp -s dead.expected skip.out || fail "skip: window result '$(cat skip.out)'"
row skip.err win 1 7 1 4 0
rec_dag failing fail
st 1 /dev/null failing.err "$SLUICE" run failing.yaml
has failing.err "node 'win' (operator 'window' of plugin"
has failing.err "record at offset 2: window: field 'b' is missing (needed by sum)"
echo "window_errors: skip and fail ok"
echo "window_errors: ok"
