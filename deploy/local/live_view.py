"""What `make run` (deploy/local/run.sh) shows while the pipeline runs, and its summary.

Every look at the run reads the sandbox's control API (``/sandbox/state``,
``/sandbox/calls/counts``), each process's ``/readyz`` and ``/metrics``, the run's ERP tables,
and whether each process the script started is still alive. ``figures`` turns one such
``Reading`` into plain numbers (``Figures``); those are shown three ways:

* on a terminal, a ``rich`` live view redrawn every ``REFRESH_SECONDS``;
* otherwise, a block of plain status lines every INTERVAL seconds (``status_lines``: one
  line per stage, each starting with a fixed word such as ``events``);
* at the end, the summary lines (``summary_lines``), printed by run.sh after the drain.

Commands (run.sh's only; the process list is ``NAME=URL``, the pids ``NAME=PID``)::

    live_view.py watch --sandbox URL --process NAME=URL... --pid NAME=PID...
                       [--interval S] [--rounds N] [--duration S] [--about LINE]...
    live_view.py summary --sandbox URL --process NAME=URL...

``watch`` returns 0 once ROUNDS rounds or DURATION seconds have passed, or when SIGTERM (or
SIGINT) asks it to stop: the live view then ends with its last frame left on screen and the
terminal restored. It returns ``EXITED`` (3) as soon as one of the ``--pid`` processes is no
longer running, so that the script can report which one and stop the others.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine

from consumers.erp.tables import erp_orders, erp_stock
from orderflow.db import create_engine
from orderflow.settings import load_settings

LIFECYCLE = [
    "UNPAID",
    "READY_TO_SHIP",
    "PROCESSED",
    "RETRY_SHIP",
    "SHIPPED",
    "TO_CONFIRM_RECEIVE",
    "IN_CANCEL",
    "CANCELLED",
    "TO_RETURN",
    "COMPLETED",
]
SOURCES = ["push", "poll", "lost_push", "backfill"]
CONSUMERS = ["erp-sync", "stock-restore", "auto-cancel"]
# Processes that send records to a dead-letter topic (the enricher's notices, the consumers'
# events), in the order the view lists them.
DEAD_LETTERING = ["enricher", *CONSUMERS]
REFRESH_SECONDS = 1.5
# Rates are measured over the last this many seconds: long enough to smooth the sandbox's
# bursts, short enough that a stalled stage shows 0/s within a few refreshes.
RATE_WINDOW_SECONDS = 10.0
EXITED = 3

# (sample name, labels, value), as in the exposition text.
Sample = tuple[str, dict[str, str], float]


@dataclass(frozen=True)
class ErpState:
    """What the run's ERP holds: orders, stock models, units reserved, models with none left."""

    orders: int
    models: int
    reserved: int
    none_left: int


@dataclass(frozen=True)
class Reading:
    """One look at the run, as answered: ``health`` per process (``ready``, ``NOT READY``,
    ``down`` when it does not answer, ``exited`` when its process is gone; the sandbox
    ``up``/``down``), every process's metric samples, the sandbox's ``/sandbox/state`` and
    ``/sandbox/calls/counts`` (``None`` and empty while it does not answer), and the ERP
    (``None`` while the run's database does not answer)."""

    health: dict[str, str]
    samples: list[Sample]
    sandbox: dict[str, Any] | None
    calls: dict[str, int]
    erp: ErpState | None


@dataclass(frozen=True)
class Consumer:
    """One consumer's figures from its /metrics."""

    records: int = 0
    lag_seconds: float | None = None
    dead_letters: int = 0
    parked: int = 0


@dataclass(frozen=True)
class Figures:
    """Everything the view, the status lines and the summary show, as plain numbers."""

    orders: Counter[str] | None  # the sandbox's orders by status; None: it does not answer
    pushes: dict[str, int] | None  # the sandbox's push summary (emitted, delivered, lost, ...)
    received: Counter[str]  # webhook pushes by outcome
    notices: Counter[str]  # notices written, by source
    events: Counter[str]  # events emitted, by source
    first_seen_by_poll: int
    enriched: Counter[str]  # enricher notices done, by outcome
    api_calls: Counter[str]  # Shopee API calls by API (its last path part)
    api_errors: Counter[str]  # calls not ok, by API
    api_outcomes: Counter[str]  # calls by outcome (ok, retryable, auth, final)
    erp: ErpState | None
    upserts: int
    reserves: int
    restocks: int
    deducts: int
    cancels: Counter[str]  # auto-cancel's cancel_order actions, by outcome
    answers: Counter[str]  # buyer-cancellation answers, by outcome
    decisions: Counter[str]  # auto-cancel decisions for short orders
    sandbox_cancels: int  # cancel_order calls the sandbox answered
    sandbox_answers: int  # handle_buyer_cancellation calls the sandbox answered
    consumers: dict[str, Consumer]
    dead_letters: Counter[str]  # by process (enricher and consumers)
    health: dict[str, str]
    blocked: list[str] = field(default_factory=list)  # shops set aside, described

    def totals(self) -> dict[str, float]:
        """The running totals whose rates the live view shows."""
        return {
            "orders": sum(self.orders.values()) if self.orders is not None else 0,
            "notices": sum(self.notices.values()),
            "events": sum(self.events.values()),
            "erp": self.erp.orders if self.erp is not None else 0,
            "reserves": self.reserves,
            "cancels": self.cancels["applied"],
            "api": sum(self.api_calls.values()),
        }


# ---------------------------------------------------------------------------------------------
# Reading the run's answers into figures (pure)


def parse_samples(text: str) -> list[Sample]:
    """The samples of one /metrics exposition."""
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def by(samples: Iterable[Sample], name: str, label: str) -> Counter[str]:
    """The ``name`` samples summed by the value of ``label``, as whole numbers."""
    counts: Counter[str] = Counter()
    for sample_name, labels, value in samples:
        if sample_name == name:
            counts[labels.get(label, "")] += int(value)
    return counts


def gauges(samples: Iterable[Sample], name: str, label: str) -> dict[str, float]:
    return {
        labels.get(label, ""): value
        for sample_name, labels, value in samples
        if sample_name == name
    }


def short_api(api: str) -> str:
    """``/api/v2/order/get_order_detail`` (or ``order.get_order_detail``) as its last part."""
    return api.rstrip("/").replace(".", "/").rsplit("/", 1)[-1]


def figures(reading: Reading) -> Figures:
    """The numbers of one ``Reading``."""
    samples = reading.samples
    actions: Counter[tuple[str, str]] = Counter()
    calls: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for name, labels, value in samples:
        if name == "orderflow_order_actions_total":
            actions[labels.get("kind", ""), labels.get("outcome", "")] += int(value)
        elif name == "orderflow_shopee_requests_total":
            api, outcome = short_api(labels.get("api", "")), labels.get("outcome", "")
            calls[api] += int(value)
            outcomes[outcome] += int(value)
            if outcome != "ok":
                errors[api] += int(value)

    def of_kind(kind: str) -> Counter[str]:
        return Counter({outcome: n for (k, outcome), n in actions.items() if k == kind})

    records = by(samples, "orderflow_records_consumed_total", "consumer")
    dead = by(samples, "orderflow_dead_letters_total", "consumer")
    lag = gauges(samples, "orderflow_consumer_lag_seconds", "consumer")
    parked = gauges(samples, "orderflow_consumer_parked_records", "consumer")
    blocked = sorted(
        f"{labels.get('shop_id')} ({labels.get('reason')}, {labels.get('process')})"
        for name, labels, value in samples
        if name == "orderflow_shop_blocked" and value == 1
    )
    state = reading.sandbox
    return Figures(
        orders=Counter(state["orders_by_status"]) if state is not None else None,
        pushes=dict(state["pushes"]) if state is not None else None,
        received=by(samples, "orderflow_webhook_pushes_total", "outcome"),
        notices=by(samples, "orderflow_notices_produced_total", "source"),
        events=by(samples, "orderflow_enricher_events_total", "source"),
        first_seen_by_poll=sum(
            by(samples, "orderflow_enricher_changes_first_seen_by_poll_total", "source").values()
        ),
        enriched=by(samples, "orderflow_enricher_notices_total", "outcome"),
        api_calls=calls,
        api_errors=errors,
        api_outcomes=outcomes,
        erp=reading.erp,
        upserts=sum(of_kind("erp_upsert").values()),
        # Either stock consumer moves an order's lines through the ledger, whichever sees it
        # first: the kinds are counted over both.
        reserves=sum(of_kind("stock_reserve").values()),
        restocks=sum(of_kind("stock_restore").values()),
        deducts=sum(of_kind("stock_deduct").values()),
        cancels=of_kind("cancel_order"),
        answers=of_kind("buyer_cancellation"),
        decisions=by(samples, "orderflow_auto_cancel_decisions_total", "decision"),
        sandbox_cancels=reading.calls.get("order.cancel_order", 0),
        sandbox_answers=reading.calls.get("order.handle_buyer_cancellation", 0),
        consumers={
            name: Consumer(
                records=records.get(name, 0),
                lag_seconds=lag.get(name),
                dead_letters=dead.get(name, 0),
                parked=int(parked.get(name, 0)),
            )
            for name in CONSUMERS
        },
        dead_letters=dead,
        health=dict(reading.health),
        blocked=blocked,
    )


# ---------------------------------------------------------------------------------------------
# Plain lines: the status block and the summary (pure)


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def listed(counts: Mapping[str, int], order: Sequence[str] = ()) -> str:
    """``a 1, b 2`` over the non-zero counts, ``order`` first; ``none yet`` for none."""
    keys = [k for k in order if counts.get(k)]
    keys += sorted(k for k in counts if k not in order and counts[k])
    return ", ".join(f"{k} {counts[k]}" for k in keys) or "none yet"


def _found_by_polling(f: Figures) -> str:
    n = f.first_seen_by_poll
    return (
        f"{n} change{'' if n == 1 else 's'} found by polling or the lost-push drain before any push"
    )


def _stock_text(f: Figures) -> str:
    return (
        f"{counted(f.reserves, 'reservation')}, {counted(f.restocks, 'restock')} of "
        f"cancelled orders, {counted(f.deducts, 'deduction')} of shipped ones"
    )


def _unapplied(f: Figures) -> Counter[str]:
    """Cancels auto-cancel meant to make that Shopee refused or that failed."""
    return Counter({k: v for k, v in f.cancels.items() if k in ("rejected", "failed")})


def _cancel_text(f: Figures) -> str:
    unapplied = _unapplied(f)
    return (
        f"{counted(f.cancels['applied'], 'order')} cancelled as OUT_OF_STOCK (the sandbox "
        f"answered {counted(f.sandbox_cancels, 'cancel_order call')}); short orders decided: "
        f"{listed(f.decisions, ['cancel', 'dry_run', 'over_budget'])}"
        + (f"; not applied: {listed(unapplied)}" if unapplied else "")
    )


def _answer_text(f: Figures) -> str:
    others = Counter({k: v for k, v in f.answers.items() if k != "applied"})
    return (
        f"{counted(f.answers['applied'], 'cancellation request')} answered (the sandbox "
        f"answered {counted(f.sandbox_answers, 'handle_buyer_cancellation call')})"
        + (f"; not applied: {listed(others)}" if others else "")
    )


def _consumers_text(f: Figures) -> str:
    per_consumer = "; ".join(
        f"{name} {counted(c.records, 'record')}"
        + (f", lag {c.lag_seconds:.1f} s" if c.lag_seconds is not None else "")
        for name, c in f.consumers.items()
    )
    text = f"{per_consumer}; dead letters: {listed(f.dead_letters, DEAD_LETTERING)}"
    parked = Counter({name: c.parked for name, c in f.consumers.items() if c.parked})
    if parked:
        text += f"; parked (blocked shops): {listed(parked, CONSUMERS)}"
    return text


def _pushes(f: Figures) -> tuple[dict[str, int], int]:
    p = f.pushes or {}
    return p, p.get("lost", 0) - p.get("lost_unconfirmed", 0)


def status_lines(f: Figures) -> list[str]:
    """One plain status block: a line per stage, each led by a fixed word."""
    lines = []
    if f.orders is not None:
        p, drained = _pushes(f)
        lines.append(
            f"orders    {sum(f.orders.values())} in the sandbox: {listed(f.orders, LIFECYCLE)}"
        )
        lines.append(
            f"pushes    {p.get('emitted', 0)} sent by Shopee: {p.get('delivered', 0)} delivered "
            f"(duplicates count twice), {p.get('lost', 0)} lost ({drained} drained by the "
            f"poller), {p.get('dropped', 0)} dropped silently, {p.get('pending', 0)} pending"
        )
    else:
        lines.append("orders    the sandbox does not answer")
    lines += [
        f"webhook   {sum(f.received.values())} pushes received: {listed(f.received)}",
        f"notices   {sum(f.notices.values())} written: {listed(f.notices, SOURCES)}",
        f"events    {sum(f.events.values())} emitted to the orders topic: "
        f"{listed(f.events, SOURCES)}; {_found_by_polling(f)}",
        f"enricher  {sum(f.enriched.values())} notices done: "
        f"{listed(f.enriched, ['emitted', 'unchanged'])}",
        f"shopee    {sum(f.api_calls.values())} API calls: {listed(f.api_calls)}; not ok: "
        f"{listed(Counter({k: v for k, v in f.api_outcomes.items() if k != 'ok'}))}",
    ]
    if f.erp is None:
        lines.append("erp       the run's database does not answer")
    else:
        lines.append(
            f"erp       {counted(f.erp.orders, 'order')} synced ({counted(f.upserts, 'upsert')} "
            f"by erp-sync); stock of {counted(f.erp.models, 'model')}: "
            f"{counted(f.erp.reserved, 'unit')} reserved, {f.erp.none_left} with none available"
        )
    lines += [
        f"stock     {_stock_text(f)}",
        f"cancels   {_cancel_text(f)}",
        f"buyers    {_answer_text(f)}",
        f"consumers {_consumers_text(f)}",
    ]
    health = "health    " + ", ".join(f"{n} {h}" for n, h in f.health.items())
    if f.blocked:
        # e.g. a shop whose authorisation is gone, or whose API quota is spent
        health += "; shops set aside: " + ", ".join(f.blocked)
    lines.append(health)
    return lines


def summary_lines(f: Figures) -> list[str]:
    """The summary printed once the run stops, each line led by what it counts."""
    lines = []
    if f.orders is not None:
        p, drained = _pushes(f)
        lines += [
            f"orders in the sandbox: {sum(f.orders.values())} ({listed(f.orders, LIFECYCLE)})",
            f"pushes: {p.get('emitted', 0)} sent by Shopee, {p.get('delivered', 0)} delivered, "
            f"{p.get('lost', 0)} lost ({drained} drained by the poller), "
            f"{p.get('dropped', 0)} dropped silently",
        ]
    lines += [
        f"notices written: {sum(f.notices.values())} ({listed(f.notices, SOURCES)})",
        f"events emitted: {sum(f.events.values())} ({listed(f.events, SOURCES)}); "
        + _found_by_polling(f),
    ]
    if f.erp is None:
        lines.append("ERP: the run's database does not answer")
    else:
        lines.append(
            f"ERP: {counted(f.erp.orders, 'order')} synced; {counted(f.erp.reserved, 'unit')} "
            f"reserved over {counted(f.erp.models, 'model')}, {f.erp.none_left} with none "
            "available"
        )
    lines += [
        f"stock: {_stock_text(f)}",
        f"auto-cancels: {_cancel_text(f)}",
        f"buyers: {_answer_text(f)}",
        f"shopee API: {counted(sum(f.api_calls.values()), 'call')}, not ok: "
        f"{listed(Counter({k: v for k, v in f.api_outcomes.items() if k != 'ok'}))}",
        f"consumers: {_consumers_text(f)}",
    ]
    return lines


# ---------------------------------------------------------------------------------------------
# Time: rates and when the watch ends (pure; ``now`` is always passed in)


def per_second(
    history: Sequence[tuple[float, Mapping[str, float]]], window: float = RATE_WINDOW_SECONDS
) -> dict[str, float]:
    """Each total's rate over the last ``window`` seconds of ``history`` (``(time, totals)``,
    oldest first): from the oldest entry inside the window to the newest. Empty until two
    entries are at least a second apart."""
    if not history:
        return {}
    now, newest = history[-1]
    then, oldest = next((t, v) for t, v in history if now - t <= window)
    if now - then < 1.0:
        return {}
    return {key: max(0.0, (newest[key] - oldest.get(key, 0.0)) / (now - then)) for key in newest}


def stop_after(rounds: int, interval: float, duration: float) -> float | None:
    """Seconds of traffic after which the watch ends: the sooner of ROUNDS rounds of
    INTERVAL seconds and DURATION; ``None`` (until stopped) when both are 0."""
    limits = [limit for limit in (rounds * interval, duration) if limit > 0]
    return min(limits) if limits else None


def clock(seconds: float) -> str:
    """``1:05`` for 65 seconds, ``1:01:05`` past an hour."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


# ---------------------------------------------------------------------------------------------
# The live view (pure: figures in, a renderable out)

HEALTH_STYLE = {"ready": "green", "up": "green", "NOT READY": "yellow"}


def _rate(rates: Mapping[str, float], key: str) -> Text:
    if key not in rates:
        return Text("")
    return Text(f"{rates[key]:.1f}/s", style="cyan" if rates[key] > 0 else "dim")


def _number(n: int, alarm: bool = False) -> Text:
    return Text(str(n), style="bold red" if alarm and n else "bold")


def _grid() -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column()
    return table


def _sandbox_panel(f: Figures, rates: Mapping[str, float]) -> Panel:
    table = _grid()
    if f.orders is None:
        table.add_row("orders", "", "", Text("the sandbox does not answer", style="bold red"))
    else:
        p, drained = _pushes(f)
        table.add_row("orders created", _number(sum(f.orders.values())), _rate(rates, "orders"), "")
        table.add_row("  by status", "", "", listed(f.orders, LIFECYCLE))
        table.add_row("pushes sent", _number(p.get("emitted", 0)), "", "")
        table.add_row("  delivered", str(p.get("delivered", 0)), "", "duplicates count twice")
        table.add_row("  lost", str(p.get("lost", 0)), "", f"{drained} drained by the poller")
        table.add_row(
            "  dropped", str(p.get("dropped", 0)), "", "silently: only polling finds them"
        )
        table.add_row("  pending", str(p.get("pending", 0)), "", "")
    return Panel(table, title="Shopee sandbox", title_align="left", border_style="blue")


def _ingest_panel(f: Figures, rates: Mapping[str, float]) -> Panel:
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="dim")
    table.add_column("source", no_wrap=True)
    table.add_column("notices", justify="right")
    table.add_column("events", justify="right")
    for source in SOURCES:
        if source == "backfill" and not (f.notices[source] or f.events[source]):
            continue
        table.add_row(source, str(f.notices[source]), str(f.events[source]))
    table.add_row(
        Text("total", style="bold"),
        Text.assemble((str(sum(f.notices.values())), "bold"), " ", _rate(rates, "notices")),
        Text.assemble((str(sum(f.events.values())), "bold"), " ", _rate(rates, "events")),
    )
    notes = Text.assemble(
        ("webhook ", "dim"),
        f"{sum(f.received.values())} pushes: {listed(f.received)}\n",
        ("enricher ", "dim"),
        f"{sum(f.enriched.values())} notices: {listed(f.enriched, ['emitted', 'unchanged'])}\n",
        (f"{f.first_seen_by_poll} changes found by polling before any push", "dim"),
    )
    return Panel(
        Group(table, notes),
        title="Orders ingested, by source",
        title_align="left",
        border_style="blue",
    )


def _consumers_panel(f: Figures, rates: Mapping[str, float]) -> Panel:
    table = _grid()
    if f.erp is None:
        table.add_row("ERP rows", "", "", Text("the run's database does not answer", "bold red"))
    else:
        table.add_row(
            "ERP rows",
            _number(f.erp.orders),
            _rate(rates, "erp"),
            f"orders synced ({counted(f.upserts, 'upsert')})",
        )
    table.add_row("reservations", _number(f.reserves), _rate(rates, "reserves"), "")
    table.add_row("restocks", _number(f.restocks), "", "of cancelled orders")
    table.add_row("deductions", _number(f.deducts), "", "of shipped orders")
    unapplied = _unapplied(f)
    table.add_row(
        "auto-cancels",
        _number(f.cancels["applied"]),
        _rate(rates, "cancels"),
        f"OUT_OF_STOCK; decided: {listed(f.decisions, ['cancel', 'dry_run', 'over_budget'])}"
        + (f"; not applied: {listed(unapplied)}" if unapplied else ""),
    )
    others = Counter({k: v for k, v in f.answers.items() if k != "applied"})
    table.add_row(
        "buyer-cancel answers",
        _number(f.answers["applied"]),
        "",
        f"not applied: {listed(others)}" if others else "",
    )
    if f.erp is not None:
        table.add_row(
            "ERP stock",
            str(f.erp.reserved),
            "",
            f"units reserved over {counted(f.erp.models, 'model')}, "
            f"{f.erp.none_left} with none available",
        )
    return Panel(table, title="Consumers and the ERP", title_align="left", border_style="blue")


def _shopee_panel(f: Figures, rates: Mapping[str, float]) -> Panel:
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="dim")
    table.add_column("API", no_wrap=True)
    table.add_column("calls", justify="right")
    table.add_column("errors", justify="right")
    for api, n in sorted(f.api_calls.items(), key=lambda item: (-item[1], item[0])):
        table.add_row(api, str(n), _number(f.api_errors[api], alarm=True))
    table.add_row(
        Text("total", style="bold"),
        Text.assemble((str(sum(f.api_calls.values())), "bold"), " ", _rate(rates, "api")),
        _number(sum(f.api_errors.values()), alarm=True),
    )
    problems = Counter({k: v for k, v in f.api_outcomes.items() if k != "ok"})
    caption = Text(f"not ok: {listed(problems)}", style="red" if problems else "dim")
    return Panel(
        Group(table, caption), title="Shopee API calls", title_align="left", border_style="blue"
    )


def _processes_panel(f: Figures) -> Panel:
    table = Table(box=None, padding=(0, 2), show_edge=False, header_style="dim")
    columns: list[tuple[str, JustifyMethod]] = [
        ("process", "left"),
        ("health", "left"),
        ("handled", "right"),
        ("lag", "right"),
        ("DLQ", "right"),
        ("parked", "right"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)
    handled = {
        "webhook": f"{sum(f.received.values())} pushes",
        "poller": f"{f.notices['poll'] + f.notices['lost_push']} notices",
        "enricher": f"{sum(f.enriched.values())} notices",
    }
    for name, health in f.health.items():
        consumer = f.consumers.get(name)
        if consumer is not None:
            handled[name] = counted(consumer.records, "record")
        lag = consumer.lag_seconds if consumer is not None else None
        table.add_row(
            name,
            Text(f"● {health}", style=HEALTH_STYLE.get(health, "bold red")),
            handled.get(name, ""),
            Text(f"{lag:.1f} s", style="yellow" if lag >= 30 else "")
            if lag is not None
            else Text("—", style="dim"),
            _number(f.dead_letters[name], alarm=True)
            if name in DEAD_LETTERING
            else Text("—", style="dim"),
            _number(consumer.parked, alarm=True) if consumer is not None else Text("—", "dim"),
        )
    parts: list[RenderableType] = [table]
    if f.blocked:
        parts.append(Text("shops set aside: " + ", ".join(f.blocked), style="yellow"))
    return Panel(
        Group(*parts), title="Processes", title_align="left", border_style="blue", expand=False
    )


def view(
    f: Figures,
    rates: Mapping[str, float],
    elapsed: float,
    limit: float | None = None,
    about: Sequence[str] = (),
) -> RenderableType:
    """The live view of one look at the run, ``elapsed`` seconds into the traffic; ``about``
    are lines on what runs (rate, shops, faults), shown under the title."""
    header = Text.assemble(
        ("orderflow make run", "bold"),
        "  ",
        (clock(elapsed), "bold cyan"),
        " of traffic",
        (f" (stops at {clock(limit)})" if limit is not None else "", "dim"),
        *((f"\n{line}", "dim") for line in about),
    )
    footer = Text(
        "Ctrl-C stops: every process drains, then the summary is printed", style="dim italic"
    )
    grid = Table.grid(expand=True, padding=(0, 1))
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    # Shopee's side first, then the pipeline's stages in the order records flow through them.
    grid.add_row(_sandbox_panel(f, rates), _shopee_panel(f, rates))
    grid.add_row(_ingest_panel(f, rates), _consumers_panel(f, rates))
    return Group(header, grid, _processes_panel(f), footer)


# ---------------------------------------------------------------------------------------------
# Looking at the run (I/O)


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for run.sh to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[-1][:1] != "Z"


class ErpReader:
    """Counts over the run's ERP tables, on one engine kept for the whole watch."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._engine: Engine | None = None

    def read(self) -> ErpState | None:
        if self._engine is None:
            self._engine = create_engine(self._url)
        empty = sa.case((erp_stock.c.on_hand - erp_stock.c.reserved <= 0, 1), else_=0)
        try:
            with self._engine.connect() as conn:
                orders = conn.execute(
                    sa.select(sa.func.count()).select_from(erp_orders)
                ).scalar_one()
                models, reserved, none_left = conn.execute(
                    sa.select(
                        sa.func.count(),
                        sa.func.coalesce(sa.func.sum(erp_stock.c.reserved), 0),
                        sa.func.coalesce(sa.func.sum(empty), 0),
                    )
                ).one()
        except sa.exc.SQLAlchemyError:
            return None
        return ErpState(int(orders), int(models), int(reserved), int(none_left))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


class Looker(Protocol):
    """What the watch reads: a ``Reading`` of the run, and which processes are gone."""

    def look(self) -> Reading: ...

    def exited(self) -> list[str]: ...


class RunLooker:
    """Reads the sandbox, the processes and the ERP into a ``Reading``."""

    def __init__(
        self,
        sandbox: str,
        processes: Mapping[str, str],
        pids: Mapping[str, int],
        erp: ErpReader,
    ) -> None:
        self._sandbox = sandbox
        self._processes = dict(processes)
        self._pids = dict(pids)
        self._erp = erp
        self._http = httpx.Client(timeout=2.0)

    def exited(self) -> list[str]:
        """The watched processes that are no longer running."""
        return [name for name, pid in self._pids.items() if not alive(pid)]

    def _get(self, url: str) -> httpx.Response | None:
        try:
            return self._http.get(url)
        except httpx.HTTPError:
            return None

    def _json(self, url: str) -> Any:
        """The JSON ``url`` answers with 200; ``None`` for any other answer, or none."""
        answer = self._get(url)
        if answer is None or answer.status_code != 200:
            return None
        try:
            return json.loads(answer.text)
        except ValueError:
            return None

    def look(self) -> Reading:
        # The database first: the numbers of one look should be read as close together as
        # they can, and the ERP lags the /metrics that count what was written to it.
        erp = self._erp.read()
        gone = set(self.exited())
        health: dict[str, str] = {}
        samples: list[Sample] = []
        for name, base in self._processes.items():
            ready = self._get(base + "/readyz")
            if name in gone:
                health[name] = "exited"
            elif ready is None:
                health[name] = "down"
            else:
                health[name] = "ready" if ready.status_code == 200 else "NOT READY"
            metrics = self._get(base + "/metrics")
            if metrics is not None and metrics.status_code == 200:
                samples += parse_samples(metrics.text)
        state = self._json(self._sandbox + "/sandbox/state")
        health["sandbox"] = "exited" if "sandbox" in gone else "down" if state is None else "up"
        calls = self._json(self._sandbox + "/sandbox/calls/counts") or {}
        return Reading(health, samples, state, calls, erp)

    def close(self) -> None:
        self._http.close()
        self._erp.close()


# ---------------------------------------------------------------------------------------------
# The two commands


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def watch_live(
    looker: Looker,
    stop: threading.Event,
    console: Console,
    limit: float | None,
    about: Sequence[str],
) -> int:
    """The live view until ``limit`` seconds have passed or ``stop`` is set (0), or a watched
    process exits (``EXITED``)."""
    started = time.monotonic()
    history: list[tuple[float, Mapping[str, float]]] = []
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while True:
            reading = looker.look()
            now = time.monotonic()
            f = figures(reading)
            history = [(t, v) for t, v in history if now - t <= RATE_WINDOW_SECONDS]
            history.append((now, f.totals()))
            live.update(view(f, per_second(history), now - started, limit, about), refresh=True)
            if looker.exited():
                return EXITED
            left = None if limit is None else started + limit - now
            if left is not None and left <= 0:
                return 0
            if stop.wait(REFRESH_SECONDS if left is None else min(REFRESH_SECONDS, left)):
                return 0


def watch_plain(
    looker: Looker,
    stop: threading.Event,
    interval: float,
    rounds: int,
    limit: float | None,
) -> int:
    """A block of status lines every ``interval`` seconds, until ``rounds`` blocks or
    ``limit`` seconds (0), ``stop`` (0), or a watched process exits (``EXITED``)."""
    started = time.monotonic()
    done = 0
    while True:
        next_round = started + (done + 1) * interval
        until = next_round if limit is None else min(next_round, started + limit)
        # In steps of a second, so that a process that exits is noticed at once.
        while (left := until - time.monotonic()) > 0:
            if looker.exited():
                return EXITED
            if stop.wait(min(1.0, left)):
                return 0
        now = time.monotonic()
        if now >= next_round:
            done += 1
            reading = looker.look()
            _write(f"\n== round {done}, {int(now - started)} s")
            _write("\n".join(status_lines(figures(reading))))
            if looker.exited():
                return EXITED
        if (rounds and done >= rounds) or (limit is not None and now >= started + limit):
            return 0


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep:
            raise SystemExit(f"live_view: {what} {value!r} is not NAME=VALUE")
        pairs[name] = rest
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="live_view.py", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["watch", "summary"])
    parser.add_argument("--sandbox", required=True, help="the sandbox's base URL")
    parser.add_argument("--process", action="append", default=[], help="NAME=BASE_URL")
    parser.add_argument("--pid", action="append", default=[], help="NAME=PID to watch")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--duration", type=float, default=0.0)
    parser.add_argument("--about", action="append", default=[], help="a line for the header")
    args = parser.parse_args(argv)
    processes = _pairs(args.process, "--process")
    pids = {name: int(pid) for name, pid in _pairs(args.pid, "--pid").items()}
    looker = RunLooker(args.sandbox, processes, pids, ErpReader(load_settings().database_url))
    try:
        if args.command == "summary":
            _write("\n".join(summary_lines(figures(looker.look()))))
            return 0
        stop = threading.Event()

        def stopping(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, stopping)
        # An ignored SIGINT stays ignored: run.sh starts the watch in the background and
        # stops it with SIGTERM from its own Ctrl-C trap.
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, stopping)
        limit = stop_after(args.rounds, args.interval, args.duration)
        console = Console(highlight=False)
        if console.is_terminal:
            return watch_live(looker, stop, console, limit, args.about)
        return watch_plain(looker, stop, args.interval, args.rounds, limit)
    finally:
        looker.close()


if __name__ == "__main__":
    sys.exit(main())
