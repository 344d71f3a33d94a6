#!/usr/bin/env bash
# `make run`: the local stack, orderflow's topics and schemas, and the Shopee sandbox with
# live order traffic; a shop is authorised through the real code exchange, and its orders are
# listed through the signed, self-refreshing client every few seconds. Ctrl-C stops the
# sandbox (the stack stays up; `make down` stops it).
#
# It grows with the pipeline: processes that exist are started here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BIN="$ROOT/.venv/bin"
STACK="$ROOT/deploy/local/stack.sh"
RUN_DIR="${STACK_DIR:-$ROOT/deploy/local/.stack}/run"
SANDBOX_PORT="${SANDBOX_PORT:-8181}"
SHOP_ID="${SHOP_ID:-100001}"
TRAFFIC_RATE="${TRAFFIC_RATE:-2}"
ROUNDS="${ROUNDS:-0}" # 0 = until Ctrl-C

say() { printf '\n== %s\n' "$*"; }

say "starting the local stack (Kafka, schema registry, PostgreSQL)"
eval "$("$STACK" up)"
mkdir -p "$RUN_DIR"

export ORDERFLOW_SHOPEE_PARTNER_ID="${ORDERFLOW_SHOPEE_PARTNER_ID:-2001887}"
export ORDERFLOW_SHOPEE_PARTNER_KEY="${ORDERFLOW_SHOPEE_PARTNER_KEY:-sandbox-partner-key}"
export ORDERFLOW_SHOPEE_BASE_URL="http://127.0.0.1:${SANDBOX_PORT}"

say "creating topics and registering schemas"
"$BIN/orderflow" topics

say "starting the Shopee sandbox on port $SANDBOX_PORT with $TRAFFIC_RATE new orders/s"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "sandbox stopped; the stack is still up (make down stops it)"
}
trap cleanup EXIT INT TERM
"$BIN/orderflow" sandbox --port "$SANDBOX_PORT" --shop-id "$SHOP_ID" --items 5 \
  --traffic-rate "$TRAFFIC_RATE" --time-factor 0.01 >"$RUN_DIR/sandbox.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q 'authorization code' "$RUN_DIR/sandbox.log" 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$RUN_DIR/sandbox.log"; exit 1; }
  sleep 0.1
done
code="$(sed -n "s/.*shop ${SHOP_ID} .*authorization code \([^ ]*\).*/\1/p" "$RUN_DIR/sandbox.log")"
[[ -n "$code" ]] || { cat "$RUN_DIR/sandbox.log"; echo "no authorization code from the sandbox"; exit 1; }

say "authorising shop $SHOP_ID with the code the sandbox issued"
"$BIN/orderflow" auth exchange --code "$code" --shop-id "$SHOP_ID"
"$BIN/orderflow" auth status

round=0
while :; do
  sleep 5
  round=$((round + 1))
  say "round $round: orders of shop $SHOP_ID updated in the last hour, by status"
  "$BIN/orderflow" orders list --shop-id "$SHOP_ID" --since 1h 2>"$RUN_DIR/orders.err" \
    | cut -f2 | sort | uniq -c | sort -rn
  tail -n 1 "$RUN_DIR/orders.err"
  if [[ "$ROUNDS" != 0 && "$round" -ge "$ROUNDS" ]]; then break; fi
done
