"""``orderflow backfill``: the poller's reconciliation over a historic range, once.

The range is cut into windows of at most ``ORDERFLOW_SHOPEE_ORDER_LIST_WINDOW_SECONDS``
(15 days at most, Shopee's limit). Each window is listed, its notices (``source=backfill``)
are written and acknowledged, and only then is the window recorded as done in the database,
so an interrupted run (Ctrl-C, a crash) starts again at the first unfinished window and never
re-lists a finished one. ``--dry-run`` lists and counts without writing anything.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import click
from rich.console import Console

from orderflow.metrics import Metrics
from orderflow.process import StopFlag
from producers.notices import NoticeWriter, notice_from_list_entry
from producers.reconcile import Window, list_window
from producers.state import BackfillRun, BackfillRuns
from shopee.client import ShopeeClient
from shopee.windows import split_windows

log = logging.getLogger(__name__)

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, now: float) -> int:
    """Epoch seconds from ``2026-08-01``, ``2026-08-01T12:00:00+07:00`` (UTC if no zone),
    a relative age like ``90d``/``12h``, or epoch seconds. Ages in days or weeks start at
    midnight UTC, so the same ``--since 90d`` given again the same day resumes."""
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        when = int(now) - int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        if match.group(2) in ("d", "w"):
            when -= when % 86400  # midnight UTC: the same command later that day resumes
        return when
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not a date (2026-08-01), a time (2026-08-01T12:00:00+07:00), "
            "an age (90d, 12h) or epoch seconds"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


@dataclass
class Progress:
    windows_total: int
    windows_done: int = 0
    orders: int = 0
    calls: int = 0


class ProgressView:
    """How a backfill shows its progress: a bar on a terminal, log lines otherwise."""

    def start(self, progress: Progress) -> None:
        del progress

    def update(self, progress: Progress, window: Window) -> None:
        log.info(
            "window %d/%d (%s .. %s): %d orders so far, %d API calls",
            progress.windows_done,
            progress.windows_total,
            _iso(window.start),
            _iso(window.end),
            progress.orders,
            progress.calls,
        )

    def stop(self) -> None:
        pass


class BarView(ProgressView):
    """A rich progress bar: windows done, orders found, API calls, ETA."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("backfill"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("windows  {task.fields[orders]} orders  {task.fields[calls]} API calls"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            transient=False,
            console=console,
        )
        self._task = self._bar.add_task("backfill", total=1, orders=0, calls=0)

    def start(self, progress: Progress) -> None:
        self._bar.start()
        self._bar.update(
            self._task,
            total=progress.windows_total,
            completed=progress.windows_done,
            orders=progress.orders,
            calls=progress.calls,
        )

    def update(self, progress: Progress, window: Window) -> None:
        self._bar.update(
            self._task,
            completed=progress.windows_done,
            orders=progress.orders,
            calls=progress.calls,
        )

    def stop(self) -> None:
        self._bar.stop()


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


@dataclass
class Backfill:
    client: ShopeeClient
    notices: NoticeWriter | None  # None: dry run
    runs: BackfillRuns | None  # None: dry run (nothing is recorded)
    metrics: Metrics
    window_seconds: int
    clock: Callable[[], float] = time.time

    def run(
        self,
        shop_id: int,
        since: int,
        until: int,
        *,
        view: ProgressView | None = None,
        stop: StopFlag | None = None,
    ) -> Progress:
        """Reconcile ``[since, until]`` for ``shop_id``, resuming a previous run of the same
        range; returns the totals (including earlier runs' windows)."""
        view = view or ProgressView()
        previous = self.runs.load(shop_id, since) if self.runs is not None else None
        # Resume exactly where the furthest earlier run from this start stopped: the
        # windows it finished are not listed again, whatever their end.
        start = since if previous is None else min(max(previous.done_upto, since), until)
        done = len(split_windows(since, start, self.window_seconds)) if start > since else 0
        remaining = (
            [Window(s, e) for s, e in split_windows(start, until, self.window_seconds)]
            if start < until
            else []
        )
        progress = Progress(
            windows_total=done + len(remaining),
            windows_done=done,
            orders=previous.orders_found if previous is not None else 0,
            calls=previous.api_calls if previous is not None else 0,
        )
        if done:
            log.info("resuming: %d of %d windows already done", done, progress.windows_total)
        view.start(progress)
        try:
            for window in remaining:
                if stop is not None and stop.is_set():
                    log.info(
                        "stopped after %d of %d windows; run the same command to resume",
                        progress.windows_done,
                        progress.windows_total,
                    )
                    break
                listing = list_window(self.client, shop_id, window)
                progress.calls += listing.calls
                progress.orders += len(listing.entries)
                if self.notices is not None and self.runs is not None:
                    found_at = self.clock()
                    self.notices.write(
                        [
                            notice_from_list_entry(shop_id, e, source="backfill", found_at=found_at)
                            for e in listing.entries
                        ]
                    )
                    self.runs.save(
                        BackfillRun(
                            shop_id, since, until, window.end, progress.orders, progress.calls
                        ),
                        int(self.clock()),
                    )
                progress.windows_done += 1
                self.metrics.backfill_windows.labels(str(shop_id)).inc()
                view.update(progress, window)
        finally:
            view.stop()
        return progress


@click.command("backfill")
@click.option("--shop-id", type=int, required=True, help="The shop to backfill.")
@click.option("--since", "since_text", required=True, help="Start: 2026-08-01, 90d, epoch.")
@click.option("--until", "until_text", default=None, help="End (default: now).")
@click.option("--dry-run", is_flag=True, help="List and count, write nothing.")
def backfill_command(shop_id: int, since_text: str, until_text: str | None, dry_run: bool) -> None:
    """Re-list a shop's orders updated in [SINCE, UNTIL] and write them as notices
    (source=backfill) for the enricher. Resumable: run the same command again after an
    interruption and finished windows are not listed again."""
    from producers.wiring import Ingest

    now = time.time()
    since = parse_when(since_text, now)
    until = parse_when(until_text, now) if until_text else int(now)
    if until <= since:
        raise click.BadParameter("--until must be after --since")
    ingest = Ingest.open("backfill")
    try:
        client = ingest.shopee()
        backfill = Backfill(
            client=client,
            notices=None if dry_run else ingest.notice_writer(),
            runs=None if dry_run else BackfillRuns(ingest.engine),
            metrics=ingest.metrics,
            window_seconds=ingest.settings.shopee_order_list_window_seconds,
        )
        view: ProgressView = BarView() if sys.stderr.isatty() else ProgressView()
        progress = backfill.run(shop_id, since, until, view=view, stop=ingest.stop)
        verb = "would write" if dry_run else "wrote"
        click.echo(
            f"shop {shop_id}: {progress.windows_done}/{progress.windows_total} windows, "
            f"{verb} {progress.orders} order notices, {progress.calls} get_order_list calls"
        )
    finally:
        ingest.close()
