#!/usr/bin/env bash
# The demo (`make demo` runs `bash scripts/demo.sh BUILD_DIR` after the build):
#   1. validates the shipped workflows;
#   2. starts a local Kafka (usher-kafka-sandbox: librdkafka's mock cluster, the
#      real protocol over TCP), the payments service over Kafka, the other
#      example step services over HTTP, and `usher serve`, all on free ports
#      (read back from their startup lines), with a throw-away saga log;
#   3. books a concert seat that completes, and one whose payment is declined
#      (payments.charge declines amounts over 1000) and is compensated, each
#      with `usher start --wait`;
#   4. builds a read model of the bookings from usher's event feed
#      (usher-booking-history --once, examples/booking-history) and prints
#      its summary;
#   5. prints both timelines with `usher show`, the declined one also as it
#      stood before the decline (`--at`), then `usher ls` and `usher stats`.
# Everything it starts is stopped on exit, whatever happens; if something does
# not come up in time the script fails with the logs. With --keep (`make demo
# KEEP=1`) it then leaves everything running, so the two sagas can be browsed
# in the web console, until Ctrl-C.
# USHER_DEMO_DB names the saga log (`make demo-postgres` sets a postgresql://
# URI); by default a throw-away SQLite file.
set -euo pipefail

build=build
keep=false
for arg in "$@"; do
  case $arg in
    --keep) keep=true ;;
    *) build=$arg ;;
  esac
done
build_arg=$build
cd "$(dirname "$0")/.."
root=$PWD
[[ $build == /* ]] || build=$root/$build
usher=$build/cli/usher
services_bin=$build/examples/services/usher-example-services
sandbox_bin=$build/examples/kafka-sandbox/usher-kafka-sandbox
payments_bin=$build/examples/kafka-payments/usher-kafka-payments
history_bin=$build/examples/booking-history/usher-booking-history
for bin in "$usher" "$services_bin" "$sandbox_bin" "$payments_bin" "$history_bin"; do
  [[ -x $bin ]] || { echo "demo: $bin is missing; build first (make build BUILD_DIR=$build_arg)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/usher-demo.XXXXXX")
pids=()

cleanup() {
  local status=$?
  # SIGTERM is how every program here expects to be stopped; each exits within
  # a few seconds. Last started, first stopped, one at a time: the Kafka
  # clients (usher, the payments service) leave their broker while it still
  # runs, rather than wait for it in vain.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "demo: $*" >&2
  for log in "$work"/*.out "$work"/*.log; do
    [[ -s $log ]] || continue
    echo "---- ${log##*/} (last 40 lines)" >&2
    tail -n 40 "$log" >&2
  done
  exit 1
}

# wait_for_line FILE REGEX PID: prints the first line of FILE matching REGEX;
# gives up after 15 s or as soon as PID has exited.
wait_for_line() {
  local file=$1 pattern=$2 pid=$3 line
  for _ in $(seq 1 150); do
    line=$(grep -m1 -E "$pattern" "$file" 2>/dev/null || true)
    if [[ -n $line ]]; then
      echo "$line"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
  section() { printf '\n\033[1m== %s\033[0m\n\n' "$*"; }
else
  section() { printf '\n== %s\n\n' "$*"; }
fi

# --- 1. the workflows ---------------------------------------------------------
section "usher validate workflows/"
"$usher" validate workflows/

# --- 2. the step services and the engine --------------------------------------
section "starting a local Kafka, the payments service over Kafka, the HTTP services and usher serve"
"$sandbox_bin" --brokers 1 >"$work/kafka.out" 2>"$work/kafka.log" &
pids+=($!)
bootstrap=$(wait_for_line "$work/kafka.out" '^bootstrap.servers=' "${pids[-1]}") ||
  fail "usher-kafka-sandbox did not print its bootstrap servers"
export KAFKA_BROKERS=${bootstrap#bootstrap.servers=}
"$payments_bin" --brokers "$KAFKA_BROKERS" >"$work/payments.out" 2>"$work/payments.log" &
pids+=($!)
# Its consumer group join takes about 3 s: the first payment would spend that
# much of its 5 s timeout waiting for it (docs/kafka.md).
wait_for_line "$work/payments.out" '^ready:' "${pids[-1]}" >/dev/null ||
  fail "usher-kafka-payments did not join its consumer group"
echo "kafka: $KAFKA_BROKERS (payments.requests -> usher-kafka-payments -> usher.replies)"

"$services_bin" --seats-port 0 --payments-port 0 --tickets-port 0 --notifier-port 0 \
  >"$work/services.out" 2>"$work/services.log" &
pids+=($!)
ports=$(wait_for_line "$work/services.out" '^\{.*"notifier"' "${pids[-1]}") ||
  fail "usher-example-services did not print its ports"
port_of() { [[ $ports =~ \"$1\":([0-9]+) ]] && echo "${BASH_REMATCH[1]}"; }
export SEATS_URL=http://127.0.0.1:$(port_of seats)
export TICKETS_URL=http://127.0.0.1:$(port_of tickets)
export NOTIFY_URL=http://127.0.0.1:$(port_of notifier)
echo "http services: seats $SEATS_URL, tickets $TICKETS_URL, notifier $NOTIFY_URL"

saga_log=${USHER_DEMO_DB:-$work/usher.db}
"$usher" serve --db "$saga_log" --workflows workflows --listen 127.0.0.1:0 \
  >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!)
listening=$(wait_for_line "$work/serve.out" '^usher: listening on ' "${pids[-1]}") ||
  fail "usher serve did not start listening"
export USHER_SERVER=http://${listening#usher: listening on }
unset USHER_TOKEN
echo "usher serve: $USHER_SERVER (saga log ${saga_log%%\?*})"
# The web console (docs/console.md).
if $keep; then
  echo "console: $USHER_SERVER/ui/ (kept running after the demo: --keep)"
else
  echo "console: $USHER_SERVER/ui/ while the demo runs (make demo KEEP=1 keeps it running afterwards)"
fi

# saga_status ID: the saga's status as the API reports it.
saga_status() {
  "$usher" show "$1" --json | sed -n 's/^  "status": "\([a-z]*\)",\{0,1\}$/\1/p'
}

# --- 3. two bookings ------------------------------------------------------------
section "a booking that completes: usher start concert-booking --wait"
ok_input='{"userId":"fan-17","concertId":"arena-2026-11-21","seat":"B12","amount":120}'
echo "input: $ok_input"
ok_id=$("$usher" start concert-booking --input "$ok_input" --wait -q) || fail "usher start failed"
"$usher" show "$ok_id"
[[ $(saga_status "$ok_id") == completed ]] || fail "saga $ok_id did not complete"

section "a booking declined at payment (amount > 1000), then compensated"
declined_input='{"userId":"fan-42","concertId":"arena-2026-11-21","seat":"B13","amount":2400}'
echo "input: $declined_input"
# `usher start --wait` exits 4 when the saga it waited for was compensated: expected here.
declined_id=$("$usher" start concert-booking --input "$declined_input" --wait -q) || [[ $? == 4 ]] ||
  fail "usher start failed"
"$usher" show "$declined_id"
[[ $(saga_status "$declined_id") == compensated ]] || fail "saga $declined_id was not compensated"

# --- 4. a read model from the event feed -------------------------------------
section "a read model from the event feed: usher-booking-history --once"
echo "usher-booking-history reads GET /v1/events into its own SQLite database and prints:"
echo
"$history_bin" --server "$USHER_SERVER" --db "$work/history.db" --once 2>"$work/history.log" ||
  fail "usher-booking-history failed"

# --- 5. time travel and the overview --------------------------------------------
# The moment the seat was held: columns of `usher events` are SEQ TIME TYPE
# STEP DATA, TIME in RFC 3339 as `show --at` takes it.
held_at=$("$usher" events "$declined_id" | awk '$3 == "StepSucceeded" && $4 == "reserve" { print $2; exit }')
[[ -n $held_at ]] || fail "usher events did not show when the seat of $declined_id was held"
section "the declined booking as it stood when the seat was held: usher show --at $held_at"
"$usher" show "$declined_id" --at "$held_at"

section "usher ls"
"$usher" ls

section "usher stats"
"$usher" stats

section "done"
echo "Both sagas settled as expected. The same views read the saga log directly, with or"
echo "without a server: usher ls --db LOG, usher show ID --db LOG, usher events ID --json,"
echo "where LOG is a SQLite file or a postgresql:// URI."

if $keep; then
  section "still running (--keep)"
  echo "Open $USHER_SERVER/ui/ to browse both sagas in the web console: the list, each"
  echo "saga's timeline, its steps and its events. usher serve, the step services and"
  echo "Kafka run until you press Ctrl-C; then everything is stopped as usual."
  # `wait` on a background sleep returns at once on a signal, so Ctrl-C stops
  # the demo without waiting out the sleep.
  while true; do
    sleep 3600 &
    wait $! || true
  done
fi
