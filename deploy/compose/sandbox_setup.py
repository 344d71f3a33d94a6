"""One-shot set-up of the compose stack's Shopee sandbox, before the pipeline starts.

What a seller and their ERP team do before going live, done against the sandbox through
orderflow's own commands:

1. wait until the sandbox answers;
2. give every model of the sandbox's catalogue that the ERP does not stock yet plenty on hand,
   except a share (``SANDBOX_SHORT_SHARE``) with 0 to 3, so that auto-cancel has orders it
   cannot cover, and load it with ``orderflow stock import``;
3. authorise every shop through the real code exchange (``orderflow auth exchange``).

Safe to run again (``docker compose up`` does, each time): stock already in the ERP is left as
the ledger made it, and each shop's tokens are replaced by fresh ones. A restarted sandbox is a
new world with new items; their models get stock of their own.

Settings (environment): ``SANDBOX_URL`` (default ``http://sandbox:8181``),
``SANDBOX_SHORT_SHARE`` (0.25; 0 = no auto-cancels), ``SANDBOX_SEED`` (1: which models are
short), ``SANDBOX_WAIT_SECONDS`` (60). The ``ORDERFLOW_*`` settings reach the commands.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

# Enough for hours of traffic: shipped orders take their units off hand for good.
PLENTIFUL = 100_000


def call(method: str, url: str) -> Any:
    """The JSON answer of a sandbox control route."""
    request = urllib.request.Request(url, method=method)  # noqa: S310 - the sandbox's own URL
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
        return json.load(answer)


def wait_for_sandbox(base: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            call("GET", f"{base}/sandbox/health")
            return
        except (OSError, ValueError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"sandbox-setup: {base} did not answer in {seconds:g} s: {exc}"
                ) from None
            time.sleep(1)


def orderflow(*args: str) -> str:
    """Run an orderflow command; its output, or exit with its error."""
    done = subprocess.run(["orderflow", *args], capture_output=True, text=True, check=False)  # noqa: S603, S607
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"sandbox-setup: `orderflow {' '.join(args)}` failed")
    return done.stdout


def say(line: str) -> None:
    sys.stdout.write(f"sandbox-setup: {line}\n")
    sys.stdout.flush()


def stock_rows(models: list[tuple[int, int]], short_share: float, seed: int) -> list[str]:
    """CSV lines ``item_id,model_id,on_hand`` for ``models``: PLENTIFUL, except a
    ``short_share`` of them, picked by ``seed``, with 0 to 3."""
    count = min(len(models), max(1, round(len(models) * short_share))) if short_share > 0 else 0
    rng = random.Random(f"erp-stock:{seed}")  # noqa: S311 - a demo's choice, not a secret
    short = {key: rng.randint(0, 3) for key in rng.sample(models, count)}
    return [f"{i},{m},{short.get((i, m), PLENTIFUL)}" for i, m in models]


def seed_stock(base: str, short_share: float, seed: int) -> None:
    stocked = {
        (row["item_id"], row["model_id"])
        for row in json.loads(orderflow("stock", "show", "--json"))
    }
    catalogue = {
        (int(item["item_id"]), int(model["model_id"]))
        for item in call("GET", f"{base}/sandbox/items")
        for model in item["models"].values()
    }
    missing = sorted(catalogue - stocked)
    if not missing:
        say(f"the ERP stocks all {len(catalogue)} models already; left as they are")
        return
    rows = stock_rows(missing, short_share, seed)
    with tempfile.NamedTemporaryFile("w", suffix=".csv", encoding="utf-8") as out:
        out.write("item_id,model_id,on_hand\n" + "\n".join(rows) + "\n")
        out.flush()
        orderflow("stock", "import", out.name)
    short = sum(1 for row in rows if not row.endswith(f",{PLENTIFUL}"))
    say(f"ERP stock loaded for {len(rows)} models, {short} of them short")


def authorise_shops(base: str) -> None:
    for shop in call("GET", f"{base}/sandbox/shops"):
        shop_id = int(shop["shop_id"])
        code = call("POST", f"{base}/sandbox/shops/{shop_id}/authorize")["code"]
        orderflow("auth", "exchange", "--code", str(code), "--shop-id", str(shop_id))
        say(f"shop {shop_id} authorised")


def main() -> None:
    base = os.environ.get("SANDBOX_URL", "http://sandbox:8181").rstrip("/")
    wait_for_sandbox(base, float(os.environ.get("SANDBOX_WAIT_SECONDS", "60")))
    seed_stock(
        base,
        float(os.environ.get("SANDBOX_SHORT_SHARE", "0.25")),
        int(os.environ.get("SANDBOX_SEED", "1")),
    )
    authorise_shops(base)


if __name__ == "__main__":
    main()
