"""The enricher and ``orderflow backfill`` against the sandbox, on the real broker and registry:
how many Shopee calls they make for a given amount of work, measured by the sandbox itself.

* a burst of 5,000 notices for 5,000 distinct orders costs at most 1.05 get_order_detail
  calls per 50 orders (the minimum is 1);
* a backfill over 90 days of history makes at most 5% more list and detail calls than the
  minimum, shows a progress bar, and resumes after an interruption without re-listing
  finished windows.
"""

from __future__ import annotations

import io
import math
import time
from datetime import UTC, datetime

from rich.console import Console

from orderflow.db import create_engine
from orderflow.process import StopFlag
from producers.backfill import Backfill, BarView, Progress
from producers.reconcile import Window
from producers.state import BackfillRuns
from schemas.models import OrderNotice, make_event_id
from shopee.windows import split_windows
from tests.integration.producers.conftest import DAY, World
from tests.integration.topics import read_topic


def test_a_burst_of_5000_notices_costs_at_most_105_detail_calls(world: World) -> None:
    state = world.sandbox.state
    order_sns = [state.create_order(world.shop_id, [(world.item_id, 0, 1)]) for _ in range(5000)]
    writer = world.notice_writer()
    notices = [
        OrderNotice(
            event_id=make_event_id(
                marketplace="shopee",
                shop_id=world.shop_id,
                order_sn=sn,
                status="READY_TO_SHIP",
                update_time=None,
                source="push",
                discriminator=sn,
            ),
            shop_id=world.shop_id,
            order_sn=sn,
            status="READY_TO_SHIP",
            source="push",
            received_at=datetime.now(UTC),
        )
        for sn in order_sns
    ]
    writer.write(notices)
    state.call_log.clear()

    seconds = world.enrich_until(5000)

    detail_calls = world.calls("order.get_order_detail")
    per_50 = detail_calls / (len(order_sns) / 50)
    print(
        f"enricher: 5000 notices in {seconds:.2f}s ({5000 / seconds:.0f}/s), "
        f"{detail_calls} get_order_detail calls ({per_50:.3f} per 50 orders)"
    )
    assert per_50 <= 1.05
    events = read_topic(world.settings, world.settings.topic_orders)
    assert len(events) == 5000
    assert len({r.key for r in events}) == 5000


def _history(world: World, days: int, orders: int) -> list[str]:
    """``orders`` orders spread evenly over the last ``days`` days (by update_time)."""
    now = int(time.time())
    state = world.sandbox.state
    return [
        state.create_order(
            world.shop_id,
            [(world.item_id, 0, 1)],
            create_time=now - days * DAY + int(i * days * DAY / orders) + 1,
        )
        for i in range(orders)
    ]


class _StopAfter(BarView):
    """The real progress bar, on a console of the test's, that asks to stop after n windows."""

    def __init__(self, console: Console, stop: StopFlag, windows: int) -> None:
        super().__init__(console=console)
        self._stop = stop
        self._windows = windows

    def update(self, progress: Progress, window: Window) -> None:
        super().update(progress, window)
        if progress.windows_done >= self._windows:
            self._stop.set()


def test_backfill_of_90_days_is_within_5_percent_of_minimum_calls_and_resumes(
    world: World,
) -> None:
    orders = _history(world, days=90, orders=900)
    now = int(time.time())
    since, until = now - 90 * DAY, now
    world.sandbox.state.call_log.clear()
    runs = BackfillRuns(create_engine(world.engine_url))
    backfill = Backfill(
        client=world.client,
        notices=world.notice_writer(),
        runs=runs,
        metrics=world.metrics,
        window_seconds=14 * DAY,
    )

    # First run: interrupted (as by Ctrl-C) after 3 of 7 windows.
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    stop = StopFlag()
    first = backfill.run(world.shop_id, since, until, view=_StopAfter(console, stop, 3), stop=stop)
    assert (first.windows_done, first.windows_total) == (3, 7)
    lists_first = world.calls("order.get_order_list")
    assert "API calls" in screen.getvalue() and "3/7" in screen.getvalue()

    # The fewest list calls: one page of up to 100 orders per window, at least one page.
    times = [world.sandbox.state.order(sn).update_time for sn in orders]
    windows = split_windows(since, until, 14 * DAY)
    pages = [
        max(1, math.ceil(sum(start <= t <= end for t in times) / 100)) for start, end in windows
    ]
    assert lists_first == sum(pages[:3])

    # Second run: the same command resumes at window 4; windows 1-3 are not listed again.
    second = backfill.run(world.shop_id, since, until, stop=StopFlag())
    assert (second.windows_done, second.windows_total) == (7, 7)
    assert world.calls("order.get_order_list") - lists_first == sum(pages[3:])
    assert second.orders >= len(orders)

    world.enrich_until(len(orders))
    list_calls = world.calls("order.get_order_list")
    detail_calls = world.calls("order.get_order_detail")
    minimum = sum(pages) + math.ceil(len(orders) / 50)
    print(f"backfill: {list_calls} list + {detail_calls} detail calls, minimum {minimum}")
    assert list_calls + detail_calls <= 1.05 * minimum
    events = read_topic(world.settings, world.settings.topic_orders)
    assert {r.header("source") for r in events} == {"backfill"}
    assert len({r.key for r in events}) == len(orders)


def test_a_dry_run_lists_and_counts_but_writes_and_records_nothing(world: World) -> None:
    orders = _history(world, days=30, orders=120)
    now = int(time.time())
    dry = Backfill(
        client=world.client,
        notices=None,
        runs=None,
        metrics=world.metrics,
        window_seconds=14 * DAY,
    )
    progress = dry.run(world.shop_id, now - 30 * DAY, now, stop=StopFlag())
    assert (progress.windows_done, progress.windows_total) == (3, 3)
    assert progress.orders >= len(orders)
    assert progress.calls == world.calls("order.get_order_list") >= 3
    assert read_topic(world.settings, world.settings.topic_notices) == []
    runs = BackfillRuns(create_engine(world.engine_url))
    assert runs.load(world.shop_id, now - 30 * DAY) is None
