#!/usr/bin/env bash
# e2e: `sluice kafka-dev`, the development Kafka cluster (librdkafka's mock).
#  - usage errors exit 2 with a message naming the bad option;
#  - a cluster of 2 brokers prints "bootstrap.servers=..." and writes the same
#    list to --write FILE; every broker listens on 127.0.0.1 only (checked in
#    /proc/net/tcp) and accepts a TCP connection;
#  - SIGTERM stops it with exit 0 and removes FILE.
# Clients talking Kafka to the cluster: tests/unit/test_kafka_dev.c.
source "$(dirname "$0")/lib.sh"
export LC_ALL=C

usage_error() { # usage_error MESSAGE ARGS...
  local want=$1
  shift
  st 2 u.out u.err "$SLUICE" kafka-dev "$@"
  grep -qF -- "$want" u.err || { cat u.err >&3; fail "kafka-dev $*: expected '$want'"; }
  grep -qF "usage: sluice kafka-dev" u.err || fail "kafka-dev $*: no usage text"
}
usage_error "--brokers must be an integer between 1 and 16, got '0'" --brokers 0
usage_error "--brokers must be an integer between 1 and 16, got '17'" --brokers 17
usage_error "topic 'cl icks': a name has only letters" --topic "cl icks"
usage_error "topic 'x:0': partitions must be an integer from 1 to 10000" --topic x:0
usage_error "kafka-dev takes no operands ('extra')" extra
usage_error "unknown option '--nope'" --nope
usage_error "option '--write' needs a value" --write
usage_error "option '--control' needs a value" --control
# --control on a path that exists: no pipe, exit 1, saying why
touch taken
st 1 c.out c.err "$SLUICE" kafka-dev --control taken
grep -qF -- "--control cannot create the named pipe taken: File exists" c.err || { cat c.err >&3; fail "--control on an existing file: no clear error"; }
st 0 h.out h.err "$SLUICE" help kafka-dev
grep -qF "usage: sluice kafka-dev" h.out || fail "help kafka-dev: no usage"
st 0 h2.out h2.err "$SLUICE" --help
grep -qF "kafka-dev" h2.out || fail "sluice --help does not list kafka-dev"

"$SLUICE" kafka-dev --brokers 2 --topic clicks:3 --topic views --write boot.txt > kd.out 2> kd.err &
pid=$!
for _ in $(seq 100); do
  [ -s boot.txt ] && break
  kill -0 "$pid" 2> /dev/null || { cat kd.err >&3; fail "kafka-dev exited before it wrote boot.txt"; }
  sleep 0.1
done
[ -s boot.txt ] || { kill -9 "$pid"; fail "no boot.txt after 10 s"; }
boot=$(cat boot.txt)
for _ in $(seq 50); do grep -q bootstrap.servers kd.out && break; sleep 0.1; done
[ "$(cat kd.out)" = "bootstrap.servers=$boot" ] || { kill -9 "$pid"; fail "stdout '$(cat kd.out)' vs file '$boot'"; }
IFS=, read -r -a addrs <<< "$boot"
[ "${#addrs[@]}" -eq 2 ] || { kill -9 "$pid"; fail "expected 2 brokers, got '$boot'"; }
for a in "${addrs[@]}"; do
  host=${a%:*}
  port=${a##*:}
  [ "$host" = 127.0.0.1 ] || { kill -9 "$pid"; fail "broker $a is not on 127.0.0.1"; }
  hexport=$(printf '%04X' "$port")
  # the listening socket (state 0A) of that port: bound to 127.0.0.1 only
  binds=$(awk -v p=":$hexport" '$4 == "0A" && substr($2, length($2) - 4) == p { print $2 }' /proc/net/tcp /proc/net/tcp6)
  [ "$binds" = "0100007F:$hexport" ] || { kill -9 "$pid"; fail "port $port listens on '$binds', not 127.0.0.1 only"; }
  (exec 5<> "/dev/tcp/127.0.0.1/$port") || { kill -9 "$pid"; fail "cannot connect to $a"; }
done
grep -qF "topic 'clicks': 3 partition(s)" kd.err || { kill -9 "$pid"; cat kd.err >&3; fail "topic clicks not reported"; }
kill -TERM "$pid"
set +e
wait "$pid"
got=$?
set -e
[ "$got" -eq 0 ] || { cat kd.err >&3; fail "kafka-dev exited $got after SIGTERM"; }
[ ! -e boot.txt ] || fail "boot.txt left behind"
grep -qF "stopping (SIGTERM)" kd.err || fail "no stop message"
echo "kafka_dev: ok"
