"""The end-to-end benchmark's pure parts, its commit tracker over a real SQLite file, and
the baseline sink's rows and upsert."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest

from benchmarks.e2e import (
    CommitTracker,
    Pushed,
    histogram_mean,
    hop_latencies,
    measure,
    percentile,
    push_change,
    reflects,
    run_queue_seconds,
)
from benchmarks.e2e_baseline import bare_orders, metadata, receipts, sink_rows, upsert
from orderflow.db import create_engine
from orderflow.metrics import Metrics
from shopee.sandbox.pushes import (
    PushMessage,
    encode_push,
    order_status_push,
    tracking_number_push,
)


def _status_push(order_sn: str, status: str, update_time: int, shop_id: int = 7) -> PushMessage:
    payload = order_status_push(
        shop_id=shop_id,
        order_sn=order_sn,
        status=status,
        update_time=update_time,
        completed_scenario=None,
        timestamp=update_time,
        msg_id=f"m-{order_sn}-{status}",
    )
    return PushMessage(f"m-{order_sn}-{status}", 3, shop_id, update_time, encode_push(payload))


def test_an_order_status_push_announces_one_change() -> None:
    message = _status_push("2404098R48U37H", "READY_TO_SHIP", 1_764_000_000)
    assert push_change(message.payload()) == (7, "2404098R48U37H", "READY_TO_SHIP", 1_764_000_000)


def test_other_pushes_announce_no_change() -> None:
    tracking = tracking_number_push(
        shop_id=7,
        order_sn="2404098R48U37H",
        forder_id="1234567890123456789",
        package_number="OFG1",
        tracking_no="SPX1",
        timestamp=1_764_000_000,
        msg_id="t1",
    )
    assert push_change(tracking) is None
    assert push_change({"code": 0, "data": {"verify_info": "x"}}) is None


def test_a_row_reflects_its_change_or_any_later_one() -> None:
    change = (7, "A", "READY_TO_SHIP", 100)
    assert reflects("READY_TO_SHIP", 100, change)
    assert reflects("SHIPPED", 101, change)
    assert not reflects("UNPAID", 100, change)  # another change in the same second
    assert not reflects("UNPAID", 99, change)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(x) for x in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 0) == 1.0
    assert percentile([1.0, math.inf], 99) == math.inf
    with pytest.raises(ValueError):
        percentile([], 50)


def test_only_changes_received_in_the_window_are_measured_and_lost_ones_count_as_never() -> None:
    received = {
        (1, "early", "S", 1): 9.9,
        (1, "a", "S", 1): 10.0,
        (1, "b", "S", 1): 15.0,
        (1, "lost", "S", 1): 19.0,
        (1, "late", "S", 1): 20.0,
    }
    committed = {
        (1, "early", "S", 1): 10.5,
        (1, "a", "S", 1): 10.25,
        (1, "b", "S", 1): 21.0,
        (1, "late", "S", 1): 20.5,
    }
    measured = measure(received, committed, (10.0, 20.0))
    assert sorted(measured.latencies) == [0.25, 6.0, math.inf]
    assert (measured.received, measured.missing) == (3, 1)
    # Rows that became visible within the window, whichever push they came from.
    assert measured.committed_in_window == 2
    assert measured.per_second == pytest.approx(0.2)
    assert measured.percentile(50) == 6.0


def test_a_window_without_a_single_push_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no push was received"):
        measure({(1, "a", "S", 1): 5.0}, {}, (10.0, 20.0))


def test_hops_split_the_latency_at_each_point_a_change_passed() -> None:
    key, other = (1, "a", "S", 1), (1, "b", "S", 1)
    emitted = {key: 9.75, other: 10.5}
    received = {key: 10.0, other: 11.0}
    hops = hop_latencies(
        received, [emitted, received, {key: 10.5}, {key: 11.25, other: 12.0}], (10.0, 20.0)
    )
    # "b" never reached the middle point: it is in no hop at all.
    assert hops == [[0.25], [0.5], [0.75]]


def _handed(batches: list[list[Pushed]]) -> Callable[[], list[Pushed]]:
    """A source of pushed changes that hands out one batch per call, then nothing."""

    def take() -> list[Pushed]:
        return batches.pop(0) if batches else []

    return take


def _wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the tracker never saw the row"
        time.sleep(0.01)


def test_the_tracker_stamps_a_change_once_a_row_reflecting_it_is_visible(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'sink.db'}")
    metadata.create_all(engine)
    early, late = (7, "A", "READY_TO_SHIP", 100), (7, "B", "READY_TO_SHIP", 100)
    pushes = [[(early, 5.0), (late, 5.5)]]
    row = {"shop_id": 7, "status": "READY_TO_SHIP", "update_time": 100, "received_at": 1.0}
    try:
        with CommitTracker(engine, bare_orders, _handed(pushes), interval=0.01) as tracker:
            _wait_for(lambda: tracker.outstanding() == 2)
            assert tracker.emitted == {early: 5.0, late: 5.5}
            with engine.begin() as conn:
                conn.execute(sa.insert(bare_orders), [{**row, "order_sn": "A"}])
            before = time.time()
            _wait_for(lambda: early in tracker.committed)
            assert late not in tracker.committed and tracker.outstanding() == 1
            # An older row for B does not reflect its change; a newer one does.
            with engine.begin() as conn:
                conn.execute(sa.insert(bare_orders), [{**row, "order_sn": "B", "update_time": 99}])
            time.sleep(0.1)
            assert late not in tracker.committed
            with engine.begin() as conn:
                conn.execute(
                    sa.update(bare_orders)
                    .where(bare_orders.c.order_sn == "B")
                    .values(status="SHIPPED", update_time=101)
                )
            _wait_for(lambda: late in tracker.committed)
            assert tracker.outstanding() == 0
            # Stamped with the start of the query that first saw the row, never earlier
            # than a poll after the insert began.
            assert tracker.committed[late] >= before - 0.05
    finally:
        engine.dispose()


def test_a_failing_tracker_says_so_instead_of_reporting_nothing(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no table
    pushes = [[((7, "A", "READY_TO_SHIP", 100), 5.0)]]
    try:
        with CommitTracker(engine, bare_orders, _handed(pushes), interval=0.01) as tracker:
            time.sleep(0.3)
            with pytest.raises(RuntimeError, match="tracker stopped"):
                tracker.outstanding()
    finally:
        engine.dispose()


def test_the_sink_keeps_the_newest_change_of_each_order_of_a_batch() -> None:
    bodies = [
        (_status_push("A", "UNPAID", 100).body, 1.0),
        (_status_push("A", "READY_TO_SHIP", 160).body, 2.0),
        (_status_push("A", "UNPAID", 100).body, 3.0),  # a duplicate, delivered late
        (_status_push("B", "READY_TO_SHIP", 120, shop_id=8).body, 4.0),
    ]
    assert sink_rows(bodies) == [
        {
            "shop_id": 7,
            "order_sn": "A",
            "status": "READY_TO_SHIP",
            "update_time": 160,
            "received_at": 2.0,
        },
        {
            "shop_id": 8,
            "order_sn": "B",
            "status": "READY_TO_SHIP",
            "update_time": 120,
            "received_at": 4.0,
        },
    ]


def test_the_sink_upsert_never_goes_back_in_time(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'sink.db'}")
    metadata.create_all(engine)
    statement = upsert(engine)
    try:
        for status, update_time, received in (("READY_TO_SHIP", 160, 2.0), ("UNPAID", 100, 3.0)):
            body = _status_push("A", status, update_time).body
            with engine.begin() as conn:
                conn.execute(statement, sink_rows([(body, received)]))
        # The first receipt of the row stays: it is when the change now shown arrived.
        assert receipts(engine) == {(7, "A", "READY_TO_SHIP", 160): 2.0}
    finally:
        engine.dispose()


def test_run_queue_time_is_read_for_a_live_process_and_absent_for_a_gone_one() -> None:
    waited = run_queue_seconds(os.getpid())
    assert waited is not None and waited >= 0
    assert run_queue_seconds(2**22 + 1) is None  # above Linux's pid limit: never a process


def test_a_histograms_mean_is_read_from_a_processs_exposition(metrics: Metrics) -> None:
    for seconds in (0.1, 0.3):
        metrics.shopee_request_seconds.labels(api="order.get_order_detail").observe(seconds)
    metrics.shopee_request_seconds.labels(api="order.get_order_list").observe(5.0)
    exposition = generate_latest(metrics.registry).decode()
    detail = {"api": "order.get_order_detail"}
    name = "orderflow_shopee_request_seconds"
    assert histogram_mean(exposition, name, detail) == pytest.approx(0.2)
    assert histogram_mean(exposition, name) == pytest.approx(5.4 / 3)
    with pytest.raises(ValueError, match="no observations"):
        histogram_mean(exposition, "orderflow_webhook_ack_seconds")
