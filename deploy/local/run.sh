#!/usr/bin/env bash
# `make run`: the whole pipeline on the local stack, against the Shopee sandbox: ingest, and
# the three consumers acting on an ERP stock that is short for some models.
#
#   1. the local stack (Kafka, schema registry, PostgreSQL), `orderflow topics`, and the
#      run's own database: `orderflow_run` on the stack's PostgreSQL (RUN_DIR/orderflow.db
#      without one), dropped and created empty at every start. Tokens, poller watermarks,
#      the ERP's orders, stock, ledger and outbox all belong to one sandbox, and each run's
#      sandbox is new. It is kept after the run for `orderflow erp show` / `stock show`;
#   2. the Shopee sandbox with SHOPS shops, its own push key, and (FAULTS) lossy pushes;
#   3. the ERP stock, seeded from the sandbox's catalogue (GET /sandbox/items) with
#      `orderflow stock import RUN_DIR/erp-stock.csv`: most models plentiful, a share SHORT of
#      them with 0-3 on hand, so that auto-cancel cancels orders it cannot cover;
#   4. every shop authorised through the real code exchange (`orderflow auth exchange`);
#   5. `orderflow webhook`, `poller`, `enricher` and `consume erp-sync`, `consume
#      stock-restore`, `consume auto-cancel`, logging to RUN_DIR; then the sandbox's callback
#      URL is registered (with Shopee's verification push) and RATE new orders per second
#      start flowing, a share BUYER_REQUESTS of them soon asked to be cancelled by their
#      buyer, so that the sandbox's orders move to IN_CANCEL for auto-cancel to answer
#      within the first minute (the sandbox's own buyers ask rarely, hours of Shopee time
#      after payment). The consumers (in groups of this run's own) and the enricher (when no
#      other enricher holds its group) start at the end of what earlier runs left on the
#      shared topics: those records name orders of sandboxes that are gone;
#   6. what the pipeline does, read from the sandbox, the processes' /metrics and /readyz and
#      the run's database (deploy/local/live_view.py): orders by status, pushes, orders
#      ingested by source, events emitted, Shopee API calls and errors, ERP rows and stock,
#      reservations, restocks, auto-cancels, buyer-cancellation answers, consumer lag, dead
#      letters, and each process's health. On a terminal, a live view redrawn every 1.5 s;
#      otherwise (output to a file or a pipe) a block of plain lines every INTERVAL seconds;
#   7. Ctrl-C (or DURATION seconds, or ROUNDS rounds) sends every process one SIGTERM, waits
#      for them to drain, prints a summary and leaves the stack up (`make down` stops it).
#
# Settings (environment or make variables, e.g. `make run RATE=5 FAULTS=1`):
#   RATE (2) new orders/s over all shops; SHOPS (2); FAULTS (0): 1 = 30% of pushes dropped
#   (Shopee keeps them for get_lost_push_message), 10% duplicated, reordered by up to 2 s;
#   or a spec such as "drop=0.5,dup=0.2,reorder=3,silent=1,errors=0.05,latency=50" or a JSON
#   object for PATCH /sandbox/faults. SHORT (0.25): the share of models whose ERP stock is
#   short (0 to 3 on hand; the others 100000); 0 = no auto-cancels. BUYER_REQUESTS (0.1):
#   the share of orders whose buyer asks to cancel once they are READY_TO_SHIP; 0 = only
#   the sandbox's own. DURATION (0 = until Ctrl-C) seconds of traffic, then the drain and
#   the summary; ROUNDS (0) the same as a number of INTERVAL (5) seconds, the time between
#   plain status blocks. SEED (a new one per run, so order numbers never repeat across
#   runs; it also picks the short models and the buyers who ask to cancel); TIME_FACTOR (0.01: Shopee's
#   minutes become seconds); SHOP_ID (100001, the first shop id); ports SANDBOX_PORT (8181),
#   WEBHOOK_PORT (8080), POLLER_METRICS_PORT (9401), ENRICHER_METRICS_PORT (9402),
#   ERP_SYNC_METRICS_PORT (9403), STOCK_RESTORE_METRICS_PORT (9404), AUTO_CANCEL_METRICS_PORT
#   (9405); STACK_DIR and the stack's own ports as for stack.sh.
#   Other ORDERFLOW_* variables in the environment reach the processes (e.g. LOG_LEVEL,
#   POLLER_INTERVAL_SECONDS instead of this script's 5, AUTO_CANCEL_DAILY_BUDGET instead of
#   this script's 1000, AUTO_CANCEL_DRY_RUN=true); ORDERFLOW_DATABASE_URL does not: the run
#   always has a database of its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BIN="$ROOT/.venv/bin"
VIEW="$ROOT/deploy/local/live_view.py"
STACK="$ROOT/deploy/local/stack.sh"
# Exported so that stack.sh and this script agree on one directory.
export STACK_DIR="${STACK_DIR:-$ROOT/deploy/local/.stack}"
RUN_DIR="$STACK_DIR/run"
PIDS_FILE="$RUN_DIR/pids"

RATE="${RATE:-${TRAFFIC_RATE:-2}}"
SHOPS="${SHOPS:-2}"
FAULTS="${FAULTS:-0}"
SHORT="${SHORT:-0.25}"
BUYER_REQUESTS="${BUYER_REQUESTS:-0.1}"
DURATION="${DURATION:-0}" # 0 = until Ctrl-C (or ROUNDS)
ROUNDS="${ROUNDS:-0}" # 0 = until Ctrl-C (or DURATION)
INTERVAL="${INTERVAL:-5}"
SEED="${SEED:-$(date +%s)}"
TIME_FACTOR="${TIME_FACTOR:-0.01}"
SHOP_ID="${SHOP_ID:-100001}"
SANDBOX_PORT="${SANDBOX_PORT:-8181}"
WEBHOOK_PORT="${WEBHOOK_PORT:-8080}"
POLLER_METRICS_PORT="${POLLER_METRICS_PORT:-9401}"
ENRICHER_METRICS_PORT="${ENRICHER_METRICS_PORT:-9402}"
ERP_SYNC_METRICS_PORT="${ERP_SYNC_METRICS_PORT:-9403}"
STOCK_RESTORE_METRICS_PORT="${STOCK_RESTORE_METRICS_PORT:-9404}"
AUTO_CANCEL_METRICS_PORT="${AUTO_CANCEL_METRICS_PORT:-9405}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"

SANDBOX_URL="http://127.0.0.1:${SANDBOX_PORT}"
CONSUMERS=(erp-sync stock-restore auto-cancel)
PIPELINE=(webhook poller enricher "${CONSUMERS[@]}")
declare -A PID_OF=() EXIT_OF=() URL_OF=(
  [webhook]="http://127.0.0.1:${WEBHOOK_PORT}"
  [poller]="http://127.0.0.1:${POLLER_METRICS_PORT}"
  [enricher]="http://127.0.0.1:${ENRICHER_METRICS_PORT}"
  [erp-sync]="http://127.0.0.1:${ERP_SYNC_METRICS_PORT}"
  [stock-restore]="http://127.0.0.1:${STOCK_RESTORE_METRICS_PORT}"
  [auto-cancel]="http://127.0.0.1:${AUTO_CANCEL_METRICS_PORT}"
  [sandbox]="$SANDBOX_URL"
)

say() { printf '\n== %s\n' "$*"; }
die() { printf 'run: %s\n' "$*" >&2; exit 1; }

[[ -x "$BIN/orderflow" ]] || die "no $BIN/orderflow; run \`make run\` (it runs \`make setup\` first)."
for number in RATE SHOPS ROUNDS INTERVAL DURATION TIME_FACTOR SHORT BUYER_REQUESTS; do
  [[ "${!number}" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "$number must be a number, not '${!number}'"
done
awk -v s="$SHORT" 'BEGIN { exit !(s <= 1) }' || die "SHORT is a share of the models, from 0 to 1, not '$SHORT'"
awk -v s="$BUYER_REQUESTS" 'BEGIN { exit !(s <= 1) }' \
  || die "BUYER_REQUESTS is a share of the orders, from 0 to 1, not '$BUYER_REQUESTS'"
[[ "$SHOPS" =~ ^[1-9][0-9]*$ ]] || die "SHOPS must be a whole number of at least 1, not '$SHOPS'"
[[ "$ROUNDS" =~ ^[0-9]+$ ]] || die "ROUNDS must be a whole number, not '$ROUNDS'"
awk -v i="$INTERVAL" 'BEGIN { exit !(i > 0) }' || die "INTERVAL must be more than 0 seconds, not '$INTERVAL'"
[[ "$SEED" =~ ^[0-9]+$ ]] || die "SEED must be a whole number, not '$SEED'"
# RATE goes into a JSON body as it is, and JSON refuses a leading zero such as "02".
RATE="$(awk -v r="$RATE" 'BEGIN { print r + 0 }')"

# FAULTS parsing and the run's set-up steps (database, ERP stock file, consumer groups):
# Python from the venv, standard library plus what orderflow itself depends on, so nothing
# beyond `make setup` is needed. The view and the summary are deploy/local/live_view.py.
helper() {
  "$BIN/python" - "$@" <<'PY'
import signal

# Ctrl-C during a set-up step ends the helper quietly (no traceback); while the script
# drains it ignores Ctrl-C, and so does this helper then.
if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.SIG_DFL)

import contextlib
import json
import os
import random
import sys
import urllib.error
import urllib.request

DEFAULT_FAULTS = {"push_drop_rate": 0.3, "push_duplicate_rate": 0.1,
                  "push_reorder_max_delay_seconds": 2.0}
CONSUMERS = ["erp-sync", "stock-restore", "auto-cancel"]
# Plenty for hours of traffic: shipped orders take their units off hand for good.
PLENTIFUL = 100_000
# One name, dropped and created again by every run: the last run's ERP stays to be looked at,
# and runs do not pile databases up on the stack's PostgreSQL.
RUN_DATABASE = "orderflow_run"
ALIASES = {"drop": "push_drop_rate", "dup": "push_duplicate_rate",
           "duplicate": "push_duplicate_rate", "reorder": "push_reorder_max_delay_seconds",
           "latency": "latency_ms", "jitter": "latency_jitter_ms",
           "rate_limit": "rate_limit_per_second"}


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (OSError, ValueError):
        return None, ""


def faults(spec):
    """FAULTS as the JSON body of PATCH /sandbox/faults; empty for none."""
    spec = spec.strip()
    if spec.lower() in ("", "0", "off", "no", "false", "none"):
        return ""
    if spec.lower() in ("1", "on", "yes", "true"):
        return json.dumps(DEFAULT_FAULTS)
    if spec.startswith("{"):
        return json.dumps(json.loads(spec))
    body = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, raw = part.partition("=")
        if not sep:
            raise SystemExit(f"run: FAULTS: {part!r} is not key=value")
        key = key.strip()
        try:
            value = json.loads(raw)
        except ValueError:
            raise SystemExit(f"run: FAULTS: {raw!r} (for {key}) is not a number") from None
        if key == "silent":  # dropped pushes vanish: only polling can find those changes
            body["dropped_push_to_lost_store"] = not value
        elif key == "errors":  # this share of every Shopee API call fails
            body["error_rates"] = {"*": value}
        else:
            body[ALIASES.get(key, key)] = value
    return json.dumps(body)


def describe_faults(text):
    f = json.loads(text)
    parts = []
    if f.get("push_drop_rate"):
        where = ("kept for get_lost_push_message" if f.get("dropped_push_to_lost_store", True)
                 else "silently: only polling finds those changes")
        parts.append(f"{f['push_drop_rate']:.0%} of pushes dropped ({where})")
    if f.get("push_duplicate_rate"):
        parts.append(f"{f['push_duplicate_rate']:.0%} delivered twice")
    if f.get("push_reorder_max_delay_seconds"):
        parts.append(f"each delayed by up to {f['push_reorder_max_delay_seconds']:g} s (reordered)")
    for api, rate in (f.get("error_rates") or {}).items():
        parts.append(f"{rate:.0%} of {'all API calls' if api == '*' else api} fail")
    if f.get("latency_ms"):
        parts.append(f"{f['latency_ms']:g} ms added to every API call")
    if f.get("rate_limit_per_second"):
        parts.append(f"rate limit {f['rate_limit_per_second']}/s per shop")
    return "; ".join(parts) or "none"


def skip_to_end(topic, groups):
    """Commit each of ``groups``' offsets at the current end of ``topic``; per group, how
    many records that skipped. A group with live members refuses (KafkaError)."""
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata, TopicPartition

    from orderflow.kafka import client_config
    from orderflow.settings import load_settings

    settings = load_settings()
    skipped = {}
    for group in groups:
        consumer = KafkaConsumer(**client_config(settings), group_id=group, enable_auto_commit=False)
        try:
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            ends = consumer.end_offsets(partitions)
            skipped[group] = sum(ends[tp] - (consumer.committed(tp) or 0) for tp in partitions)
            consumer.commit({
                tp: OffsetAndMetadata(offset=ends[tp], metadata="", leader_epoch=-1)
                for tp in partitions
            })
        finally:
            consumer.close()
    return skipped


def skip_old_notices():
    """Commit the enricher group's offsets at the end of the notices topic. Notices an
    earlier run left unenriched (it was killed, or they arrived during its drain) name orders
    of that run's sandbox, which this one never had; and a group Kafka has forgotten would
    otherwise start at the earliest notice of every run before."""
    from kafka.errors import KafkaError

    from orderflow.settings import load_settings

    settings = load_settings()
    group = settings.enricher_group_id
    try:
        left = skip_to_end(settings.topic_notices, [group])[group]
    except KafkaError as exc:
        # A group with live members (an enricher outside this script) refuses the commit.
        print(f"enricher group {group} left where it was ({exc})")
        return
    if left:
        print(f"skipped {left} notices an earlier run left unenriched: their orders were in "
              "that run's sandbox")


def skip_old_orders():
    """Commit this run's consumer groups at the end of the orders topic, before anything of
    this run reaches it. The topic is shared by every run; the events on it so far are
    orders of earlier runs' sandboxes, and applied to this run's ERP they would take its
    stock, and auto-cancel would ask this sandbox to cancel orders it never had."""
    from kafka.errors import KafkaError

    from orderflow.settings import load_settings

    settings = load_settings()
    groups = [settings.consumer_group_prefix + name for name in CONSUMERS]
    try:
        skipped = skip_to_end(settings.topic_orders, groups)
    except KafkaError as exc:
        raise SystemExit(
            f"run: could not start the consumer groups {', '.join(groups)} at the end of "
            f"{settings.topic_orders} ({exc}); is a consumer of another run still in them?"
        ) from None
    left = max(skipped.values(), default=0)
    print(f"the consumers (groups {', '.join(groups)}) start at the end of "
          f"{settings.topic_orders}, past what earlier runs left there ("
          + (f"{left} offsets, transaction markers included)" if left else "nothing yet)"))


def fresh_database(url):
    """The URL of this run's database, created empty now (an earlier run's is dropped)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)
        return url
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from orderflow.db import normalise_url

    server = sa.create_engine(
        make_url(normalise_url(url)).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        with server.connect() as conn:
            # FORCE: a session still open on the last run's ERP (an `erp show` in another
            # terminal) must not keep it.
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{RUN_DATABASE}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{RUN_DATABASE}"'))
    except sa.exc.SQLAlchemyError as exc:
        raise SystemExit(f"run: could not create the database {RUN_DATABASE}: {exc}") from None
    finally:
        server.dispose()
    return make_url(url).set(database=RUN_DATABASE).render_as_string(hide_password=False)


def seed_stock(sandbox, seed, share, path):
    """Write the ERP stock file (item_id,model_id,on_hand) for every model in the sandbox's
    catalogue: PLENTIFUL on hand, except a ``share`` of the models, picked by the run's seed,
    with 0 to 3, so that some orders cannot be covered."""
    code, text = get(sandbox + "/sandbox/items")
    if code != 200:
        raise SystemExit(f"run: the sandbox did not list its items (answer {code})")
    models = sorted({(item["item_id"], model["model_id"])
                     for item in json.loads(text) for model in item["models"].values()})
    count = min(len(models), max(1, round(len(models) * share))) if share > 0 else 0
    rng = random.Random(f"erp-stock:{seed}")
    short = {key: rng.randint(0, 3) for key in rng.sample(models, count)}
    with open(path, "w", encoding="utf-8") as out:
        out.write("item_id,model_id,on_hand\n")
        for item_id, model_id in models:
            out.write(f"{item_id},{model_id},{short.get((item_id, model_id), PLENTIFUL)}\n")
    listing = ", ".join(f"{item}/{model} {n}" for (item, model), n in sorted(short.items()))
    print(f"{len(models)} models, {len(models) - count} with {PLENTIFUL} on hand; {count} short"
          + (f" (item/model on hand): {listing}" if listing else ""))


def main(argv):
    mode = argv[0]
    if mode == "faults":
        print(faults(argv[1]))
    elif mode == "describe-faults":
        print(describe_faults(argv[1]))
    elif mode == "skip-old-notices":
        skip_old_notices()
    elif mode == "skip-old-orders":
        skip_old_orders()
    elif mode == "fresh-database":
        print(fresh_database(argv[1]))
    elif mode == "seed-stock":
        seed_stock(argv[1], argv[2], float(argv[3]), argv[4])


main(sys.argv[1:])
PY
}

alive() { # pid: running, and not a zombie waiting to be reaped
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A run.sh that died without its trap (SIGKILL, a closed terminal) leaves its processes
# running, holding the ports: stop exactly those, by the pids it wrote down. A run that is
# still alive is somebody's session; leave it alone.
stop_leftovers() {
  [[ -f "$PIDS_FILE" ]] || return 0
  local owner name pid
  owner="$(sed -n 's/^run \([0-9]*\)$/\1/p' "$PIDS_FILE")"
  if [[ -n "$owner" ]] && alive "$owner" && grep -qa 'run.sh' "/proc/$owner/cmdline" 2>/dev/null; then
    die "another \`make run\` (pid $owner) is running on $STACK_DIR; stop it first (Ctrl-C there)."
  fi
  while read -r name pid; do
    [[ "$name" == run ]] && continue
    if alive "$pid" && grep -qa orderflow "/proc/$pid/cmdline" 2>/dev/null; then
      echo "stopping $name (pid $pid), left running by an earlier make run"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 $((STOP_TIMEOUT * 5))); do alive "$pid" || break; sleep 0.2; done
      alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    fi
  done <"$PIDS_FILE"
  rm -f "$PIDS_FILE"
}

# start NAME COMMAND...: in a session of its own, so a Ctrl-C in the terminal reaches only
# this script, which then sends each process exactly one SIGTERM and waits for its drain.
start() {
  local name="$1"; shift
  setsid "$@" >"$RUN_DIR/$name.log" 2>&1 &
  PID_OF[$name]=$!
  echo "$name ${PID_OF[$name]}" >>"$PIDS_FILE"
}

# wait_ready NAME URL: until URL answers 200; a process that exits meanwhile fails the run.
wait_ready() {
  local name="$1" url="$2" start=$SECONDS
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    if ! alive "${PID_OF[$name]}"; then
      tail -n 30 "$RUN_DIR/$name.log" >&2 || true
      die "$name exited during start-up; its log is $RUN_DIR/$name.log"
    fi
    (( SECONDS - start < READY_TIMEOUT )) \
      || die "$name not ready within ${READY_TIMEOUT}s; its log is $RUN_DIR/$name.log"
    sleep 0.2
  done
}

# stop NAME...: one SIGTERM each, then wait (they drain: finish the batch, flush, commit);
# SIGKILL only what is still running after STOP_TIMEOUT. Records each exit code.
stop() {
  local name pid deadline code
  for name in "$@"; do
    [[ -n "${PID_OF[$name]:-}" && -z "${EXIT_OF[$name]:-}" ]] && kill -TERM "${PID_OF[$name]}" 2>/dev/null || true
  done
  deadline=$((SECONDS + STOP_TIMEOUT))
  for name in "$@"; do
    pid="${PID_OF[$name]:-}"
    [[ -n "$pid" && -z "${EXIT_OF[$name]:-}" ]] || continue
    while alive "$pid" && (( SECONDS < deadline )); do sleep 0.2; done
    if alive "$pid"; then
      echo "$name did not stop within ${STOP_TIMEOUT}s of SIGTERM; killing it (see $RUN_DIR/$name.log)"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    code=0
    wait "$pid" 2>/dev/null || code=$?
    EXIT_OF[$name]=$code
  done
}

# view_args: live_view.py's arguments naming the sandbox and every process's base URL.
view_args() {
  local name
  printf '%s\n' --sandbox "$SANDBOX_URL"
  for name in "${PIPELINE[@]}"; do printf '%s\n' --process "$name=${URL_OF[$name]}"; done
}

# buyer_requests: until killed, once a second, each order newly READY_TO_SHIP gets, with the
# chance BUYER_REQUESTS, its buyer's cancellation request (POST /sandbox/orders/SN/buyer_cancel,
# request=true: IN_CANCEL, the seller must answer). An order already cancelled or shipped
# meanwhile refuses the request, and that is fine. Run in the background; SEED picks the buyers.
buyer_requests() {
  local threshold sn
  local -A seen=()
  threshold="$(awk -v s="$BUYER_REQUESTS" 'BEGIN { printf "%d", s * 32768 }')"
  RANDOM=$SEED
  while sleep 1; do
    for sn in $(curl -fsS --max-time 2 "$SANDBOX_URL/sandbox/orders?status=READY_TO_SHIP" 2>/dev/null \
      | grep -o '"order_sn":"[^"]*"' | cut -d'"' -f4 || true); do
      [[ -z "${seen[$sn]:-}" ]] || continue
      seen[$sn]=1
      if (( RANDOM < threshold )); then
        curl -sS -o /dev/null --max-time 2 -X POST "$SANDBOX_URL/sandbox/orders/$sn/buyer_cancel" \
          -H 'Content-Type: application/json' -d '{"request": true}' 2>/dev/null || true
      fi
    done
  done
}
BUYERS_PID=""

# The running view, stopped first on the way out: its last frame stays on the terminal, and
# nothing else may write there while it draws.
WATCH_PID=""
stop_watch() {
  [[ -n "$WATCH_PID" ]] || return 0
  kill -TERM "$WATCH_PID" 2>/dev/null || true
  wait "$WATCH_PID" 2>/dev/null || true
  WATCH_PID=""
}

STARTED_TRAFFIC_AT=""
OWN_PIDS_FILE=""
FAILED=""
FINISHED=0
on_exit() {
  local rc=$?
  (( FINISHED )) && return
  FINISHED=1
  # A second Ctrl-C must not cut the drain short (children inherit the ignore, too).
  trap '' INT TERM
  stop_watch
  [[ -z "$BUYERS_PID" ]] || kill -TERM "$BUYERS_PID" 2>/dev/null || true
  if [[ ${#PID_OF[@]} -eq 0 ]]; then
    [[ -z "$OWN_PIDS_FILE" ]] || rm -f "$PIDS_FILE"
    exit "$rc"
  fi
  local summary="" args=() traffic_seconds=""
  if [[ -n "${PID_OF[sandbox]:-}" ]]; then
    # No new orders while the pipeline drains; then the last numbers, while /metrics answer.
    curl -fsS -o /dev/null --max-time 3 -X POST "$SANDBOX_URL/sandbox/traffic/stop" 2>/dev/null || true
    [[ -z "$STARTED_TRAFFIC_AT" ]] || traffic_seconds=$((SECONDS - STARTED_TRAFFIC_AT))
    mapfile -t args < <(view_args)
    summary="$("$BIN/python" "$VIEW" summary "${args[@]}" 2>/dev/null || true)"
  fi
  say "stopping: SIGTERM to ${PIPELINE[*]} (they drain), then the sandbox"
  stop "${PIPELINE[@]}"
  stop sandbox
  rm -f "$PIDS_FILE"
  local name clean=1 codes=()
  for name in "${PIPELINE[@]}" sandbox; do
    [[ -n "${PID_OF[$name]:-}" ]] || continue
    codes+=("$name exit ${EXIT_OF[$name]}")
    [[ "${EXIT_OF[$name]}" == 0 ]] || clean=0
  done
  say "summary${traffic_seconds:+ after $traffic_seconds s of traffic}"
  [[ -z "$summary" ]] || printf '%s\n' "$summary"
  echo "processes: $(IFS=,; echo "${codes[*]}" | sed 's/,/, /g')$( ((clean)) && echo ' (all stopped cleanly)')"
  [[ -z "$FAILED" ]] || echo "FAILED: $FAILED"
  echo "logs: $RUN_DIR/{$(IFS=,; echo "${!PID_OF[*]}")}.log"
  echo "the run's ERP stays until the next run: ORDERFLOW_DATABASE_URL=$ORDERFLOW_DATABASE_URL $BIN/orderflow erp show (or stock show)"
  echo "the stack is still up (make down stops it)"
  if [[ -n "$FAILED" || $clean == 0 ]]; then exit 1; fi
  # Stopped on purpose (Ctrl-C, ROUNDS done) with every process clean: success.
  if [[ $rc -ne 0 && -z "${INTERRUPTED:-}" ]]; then exit "$rc"; fi
  exit 0
}
INTERRUPTED=""
trap on_exit EXIT
trap 'INTERRUPTED=1; exit 130' INT TERM

say "starting the local stack (Kafka, schema registry, PostgreSQL)"
# Assigned first: a failure inside "$(...)" given straight to eval would go unnoticed.
stack_env="$("$STACK" up)" || die "the local stack did not start; see the messages above."
eval "$stack_env"
mkdir -p "$RUN_DIR"
stop_leftovers
for port_name in SANDBOX_PORT WEBHOOK_PORT POLLER_METRICS_PORT ENRICHER_METRICS_PORT \
  ERP_SYNC_METRICS_PORT STOCK_RESTORE_METRICS_PORT AUTO_CANCEL_METRICS_PORT; do
  port_open "${!port_name}" && die "port ${!port_name} is taken by another process; set $port_name to a free port."
done
echo "run $$" >"$PIDS_FILE"
OWN_PIDS_FILE=1

export ORDERFLOW_SHOPEE_PARTNER_ID="${ORDERFLOW_SHOPEE_PARTNER_ID:-2001887}"
export ORDERFLOW_SHOPEE_PARTNER_KEY="${ORDERFLOW_SHOPEE_PARTNER_KEY:-sandbox-partner-key}"
# Shopee signs pushes with a separate "Live Push Partner Key"; a different value from the
# partner key proves the webhook verifies with the right one.
export ORDERFLOW_SHOPEE_PUSH_KEY="${ORDERFLOW_SHOPEE_PUSH_KEY:-sandbox-live-push-key}"
export ORDERFLOW_SHOPEE_BASE_URL="$SANDBOX_URL"
export ORDERFLOW_WEBHOOK_PORT="$WEBHOOK_PORT"
export ORDERFLOW_WEBHOOK_PUBLIC_URL="http://127.0.0.1:${WEBHOOK_PORT}/shopee/push"
# A demo on a laptop: the servers listen on loopback only.
export ORDERFLOW_HTTP_HOST="${ORDERFLOW_HTTP_HOST:-127.0.0.1}"
# Poll every few seconds (instead of every minute) so the poll path shows within a round;
# the overlap covers the sandbox's scaled-down lifecycle.
export ORDERFLOW_POLLER_INTERVAL_SECONDS="${ORDERFLOW_POLLER_INTERVAL_SECONDS:-5}"
export ORDERFLOW_POLLER_OVERLAP_SECONDS="${ORDERFLOW_POLLER_OVERLAP_SECONDS:-30}"
# A poller killed without its drain holds its shop leases this long: keep re-runs quick.
export ORDERFLOW_POLLER_LEASE_SECONDS="${ORDERFLOW_POLLER_LEASE_SECONDS:-30}"
# The budget counts cancels per real day, while the sandbox's days pass in minutes
# (TIME_FACTOR): the production default of 20 per shop would be spent within the first
# minute. Set it low (e.g. 5) to watch the guardrail leave short orders to a person.
export ORDERFLOW_AUTO_CANCEL_DAILY_BUDGET="${ORDERFLOW_AUTO_CANCEL_DAILY_BUDGET:-1000}"
# Consumer groups of this run only: they start where skip-old-orders puts them (below), and
# no consumer of an earlier run, or of anyone else on this stack, shares their partitions.
export ORDERFLOW_CONSUMER_GROUP_PREFIX="${ORDERFLOW_CONSUMER_GROUP_PREFIX:-orderflow-run-$(date -u +%Y%m%dT%H%M%SZ)-}"
# The enricher's group likewise (skip-old-notices starts it at the end of the notices).
export ORDERFLOW_ENRICHER_GROUP_ID="${ORDERFLOW_ENRICHER_GROUP_ID:-${ORDERFLOW_CONSUMER_GROUP_PREFIX}enricher}"

# Everything stored belongs to one sandbox, and this run's sandbox is new: with an earlier
# run's tokens, watermarks, ERP orders, stock, ledger and outbox, the numbers below would mix
# two worlds. So the run gets a database of its own (the stack's `orderflow` is left alone).
if grep -q '^export ORDERFLOW_DATABASE_URL=' <<<"$stack_env"; then
  base_database="$ORDERFLOW_DATABASE_URL"
else
  base_database="sqlite:///$RUN_DIR/orderflow.db"
fi
ORDERFLOW_DATABASE_URL="$(helper fresh-database "$base_database")" || die "could not create the run's database"
export ORDERFLOW_DATABASE_URL
echo "the run's database, created empty: $ORDERFLOW_DATABASE_URL"

say "creating topics and registering schemas"
"$BIN/orderflow" topics

shop_ids=()
for ((i = 0; i < SHOPS; i++)); do shop_ids+=($((SHOP_ID + i))); done
say "starting the Shopee sandbox on port $SANDBOX_PORT: shops ${shop_ids[*]}, seed $SEED"
shop_args=()
for id in "${shop_ids[@]}"; do shop_args+=(--shop-id "$id"); done
# Large stock: the traffic runs for hours without running out.
start sandbox "$BIN/orderflow" sandbox --port "$SANDBOX_PORT" "${shop_args[@]}" --items 5 \
  --stock 1000000 --seed "$SEED" --time-factor "$TIME_FACTOR" \
  --push-key "$ORDERFLOW_SHOPEE_PUSH_KEY"
wait_ready sandbox "$SANDBOX_URL/sandbox/health"

say "seeding the ERP stock from the sandbox's catalogue (SHORT=$SHORT of the models short)"
# The sandbox's own (marketplace) stock is large; the ERP's is what auto-cancel checks.
helper seed-stock "$SANDBOX_URL" "$SEED" "$SHORT" "$RUN_DIR/erp-stock.csv" \
  || die "could not write the ERP stock file from the sandbox's items"
"$BIN/orderflow" stock import "$RUN_DIR/erp-stock.csv" || die "the ERP stock import failed"

say "authorising every shop through the code exchange"
exchanges=()
for id in "${shop_ids[@]}"; do
  # A fresh single-use code per shop, as the seller's redirect would carry it. Tokens an
  # earlier run stored for this shop are simply replaced. The exchanges run side by side.
  answer="$(curl -fsS --max-time 5 -X POST "$SANDBOX_URL/sandbox/shops/$id/authorize")"
  code="$(sed -n 's/.*"code":"\([^"]*\)".*/\1/p' <<<"$answer")"
  [[ -n "$code" ]] || die "the sandbox gave no authorisation code for shop $id: $answer"
  "$BIN/orderflow" auth exchange --code "$code" --shop-id "$id" &
  exchanges+=($!)
done
for pid in "${exchanges[@]}"; do wait "$pid" || die "a shop was not authorised; see above"; done

# This sandbox is new, so the enricher starts at the notices written from now on, and the
# consumers at the events written from now on (nothing of this run is on Kafka yet).
helper skip-old-notices
helper skip-old-orders || die "the consumers could not be started after earlier runs' events"

say "starting the webhook (port $WEBHOOK_PORT), the poller (metrics $POLLER_METRICS_PORT) and the enricher (metrics $ENRICHER_METRICS_PORT)"
start webhook "$BIN/orderflow" webhook
start poller env ORDERFLOW_METRICS_PORT="$POLLER_METRICS_PORT" "$BIN/orderflow" poller
start enricher env ORDERFLOW_METRICS_PORT="$ENRICHER_METRICS_PORT" "$BIN/orderflow" enricher
say "starting the consumers: erp-sync (metrics $ERP_SYNC_METRICS_PORT), stock-restore (metrics $STOCK_RESTORE_METRICS_PORT), auto-cancel (metrics $AUTO_CANCEL_METRICS_PORT)"
# Where they start was set by skip-old-orders: groups new to this run, committed at the end of
# what earlier runs left. --from only says where a partition without a committed offset
# starts, which here none is. It is earliest for all three, auto-cancel included (its default
# is latest, so that a new group in production does not act on a week of history): past
# those offsets there is only this run's new sandbox, and none of its orders may be missed.
start erp-sync env ORDERFLOW_METRICS_PORT="$ERP_SYNC_METRICS_PORT" \
  "$BIN/orderflow" consume erp-sync --from earliest
start stock-restore env ORDERFLOW_METRICS_PORT="$STOCK_RESTORE_METRICS_PORT" \
  "$BIN/orderflow" consume stock-restore --from earliest
start auto-cancel env ORDERFLOW_METRICS_PORT="$AUTO_CANCEL_METRICS_PORT" \
  "$BIN/orderflow" consume auto-cancel --from earliest
for name in "${PIPELINE[@]}"; do wait_ready "$name" "${URL_OF[$name]}/readyz"; done
echo "all ready; logs in $RUN_DIR"

say "registering the callback URL with the sandbox (Shopee's verification push first)"
curl -fsS --max-time 10 -X PUT "$SANDBOX_URL/sandbox/callback" -H 'Content-Type: application/json' \
  -d "{\"callback_url\": \"$ORDERFLOW_WEBHOOK_PUBLIC_URL\", \"verify\": true}" >/dev/null \
  || die "the sandbox could not verify $ORDERFLOW_WEBHOOK_PUBLIC_URL; see $RUN_DIR/webhook.log"
echo "pushes go to $ORDERFLOW_WEBHOOK_PUBLIC_URL, signed with the push key"

faults_body="$(helper faults "$FAULTS")" || die "FAULTS='$FAULTS' is not 0, 1, key=value,... or JSON"
faults_text="none"
if [[ -n "$faults_body" ]]; then
  answer="$(curl -sS --max-time 5 -X PATCH "$SANDBOX_URL/sandbox/faults" \
    -H 'Content-Type: application/json' -d "$faults_body")"
  [[ "$answer" != *'"error"'* ]] || die "the sandbox refused FAULTS='$FAULTS': $answer"
  faults_text="$(helper describe-faults "$answer")"
  echo "faults: $faults_text"
fi

say "starting traffic: $RATE new orders/s over ${#shop_ids[@]} shops (time factor $TIME_FACTOR); Ctrl-C stops"
curl -fsS --max-time 5 -X POST "$SANDBOX_URL/sandbox/traffic/start" -H 'Content-Type: application/json' \
  -d "{\"rate\": $RATE, \"seed\": $SEED, \"time_factor\": $TIME_FACTOR, \"shop_ids\": [$(IFS=,; echo "${shop_ids[*]}")]}" \
  >/dev/null
STARTED_TRAFFIC_AT=$SECONDS
if [[ "$(awk -v s="$BUYER_REQUESTS" 'BEGIN { print (s > 0) }')" == 1 ]]; then
  echo "buyers ask to cancel $(awk -v s="$BUYER_REQUESTS" 'BEGIN { print s * 100 }')% of the orders once they are READY_TO_SHIP"
  buyer_requests &
  BUYERS_PID=$!
fi

# The view in the background, so that Ctrl-C (and SIGTERM) reach this script's trap at once;
# a background command ignores SIGINT, and the trap stops the view with SIGTERM instead.
# Started straight from this script, so that WATCH_PID is the view's own pid.
mapfile -t args < <(view_args)
for name in "${PIPELINE[@]}" sandbox; do args+=(--pid "$name=${PID_OF[$name]}"); done
"$BIN/python" "$VIEW" watch "${args[@]}" --interval "$INTERVAL" --rounds "$ROUNDS" \
  --duration "$DURATION" \
  --about "$RATE new orders/s over ${#shop_ids[@]} shops (time factor $TIME_FACTOR); faults: $faults_text" \
  --about "logs in $RUN_DIR" &
WATCH_PID=$!
code=0
wait "$WATCH_PID" || code=$?
WATCH_PID=""
if [[ $code != 0 ]]; then
  # 3: a process exited on its own; which one, the script finds out itself.
  for name in "${PIPELINE[@]}" sandbox; do
    if ! alive "${PID_OF[$name]}"; then
      code=0
      wait "${PID_OF[$name]}" 2>/dev/null || code=$?
      EXIT_OF[$name]=$code
      tail -n 20 "$RUN_DIR/$name.log" >&2 || true
      FAILED="$name exited on its own with code $code (log: $RUN_DIR/$name.log)"
      exit 1
    fi
  done
  FAILED="the view (deploy/local/live_view.py) failed with code $code"
  exit 1
fi
