"""What every ingest store must do, run against SQLite (unit) and PostgreSQL (integration).

Each check gets a freshly migrated engine."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine

from producers.state import (
    BackfillRun,
    BackfillRuns,
    EmittedSnapshots,
    Leases,
    ParkedNotices,
    ShopAuthorization,
    ShopAuthorizations,
    Snapshot,
    Watermarks,
)


def lease_has_one_holder_until_released_or_expired(engine: Engine) -> None:
    leases = Leases(engine)
    assert leases.try_take("poll:shop:1", "a", now=100, until=200)
    assert not leases.try_take("poll:shop:1", "b", now=150, until=250)
    assert leases.try_take("poll:shop:1", "a", now=150, until=300)  # the holder extends
    assert leases.try_take("poll:shop:2", "b", now=150, until=250)  # other names are free
    assert not leases.try_take("poll:shop:1", "b", now=299, until=400)
    assert leases.try_take("poll:shop:1", "b", now=300, until=400)  # expired: taken over
    leases.release("poll:shop:1", "a")  # not a's any more: no effect
    assert not leases.try_take("poll:shop:1", "a", now=301, until=400)
    leases.release("poll:shop:1", "b")
    assert leases.try_take("poll:shop:1", "a", now=301, until=400)


def watermark_only_moves_forward(engine: Engine) -> None:
    marks = Watermarks(engine)
    assert marks.get(7) is None
    marks.advance(7, 1000, now=1)
    marks.advance(7, 900, now=2)
    assert marks.get(7) == 1000
    marks.advance(7, 1100, now=3)
    assert marks.get(7) == 1100
    assert marks.get(8) is None


def authorisation_keeps_the_newest_change(engine: Engine) -> None:
    shops = ShopAuthorizations(engine)
    shops.record(ShopAuthorization(5, "authorized", 100, None, "first"))
    shops.record(ShopAuthorization(5, "deauthorized", 90, None, "late, older push"))
    assert shops.all()[5].state == "authorized"
    shops.record(ShopAuthorization(5, "deauthorized", 110, None, "newer"))
    assert shops.all()[5].state == "deauthorized"
    shops.record(ShopAuthorization(6, "expiring", 120, 999, "soon"))
    assert shops.all()[6].expire_before == 999


def snapshots_never_go_back(engine: Engine) -> None:
    snapshots = EmittedSnapshots(engine)
    snapshots.record(1, {"A": Snapshot(100, "READY_TO_SHIP"), "B": Snapshot(50, "UNPAID")}, 1)
    snapshots.record(1, {"A": Snapshot(90, "UNPAID")}, 2)  # older: ignored
    snapshots.record(1, {"B": Snapshot(50, "CANCELLED")}, 3)  # same second, later change
    snapshots.record(2, {"A": Snapshot(10, "UNPAID")}, 4)  # another shop's order A
    assert snapshots.latest(1, ["A", "B", "C"]) == {
        "A": Snapshot(100, "READY_TO_SHIP"),
        "B": Snapshot(50, "CANCELLED"),
    }
    assert snapshots.latest(2, ["A"]) == {"A": Snapshot(10, "UNPAID")}
    many = {f"O{i}": Snapshot(i, "UNPAID") for i in range(1200)}
    snapshots.record(3, many, 5)
    assert snapshots.latest(3, list(many)) == many


def backfill_progress_resumes_and_never_goes_back(engine: Engine) -> None:
    runs = BackfillRuns(engine)
    assert runs.load(1, 0) is None
    runs.save(BackfillRun(1, 0, 100, 40, orders_found=10, api_calls=3), now=1)
    runs.save(BackfillRun(1, 0, 100, 20, orders_found=5, api_calls=2), now=2)
    assert runs.load(1, 0) == BackfillRun(1, 0, 100, 40, 10, 3)
    # A later run from the same start with another end (the default end is "now") goes on
    # from the furthest point any run reached.
    runs.save(BackfillRun(1, 0, 150, 60, orders_found=12, api_calls=4), now=3)
    assert runs.load(1, 0) == BackfillRun(1, 0, 150, 60, 12, 4)
    assert runs.load(1, 10) is None  # another start is another backfill
    assert runs.load(2, 0) is None


def parked_notices_come_back_in_order(engine: Engine) -> None:
    parked = ParkedNotices(engine)
    parked.park(9, "ShopAccessLost", [(b"9:A", b"one"), (None, b"two")], now=1)
    parked.park(8, "DailyLimitReached", [(b"8:A", b"three")], now=2)
    assert parked.counts() == {9: 2, 8: 1}
    rows = parked.take(9)
    assert [(r.key, r.value) for r in rows] == [(b"9:A", b"one"), (None, b"two")]
    parked.delete([rows[0].id])
    assert [r.value for r in parked.take(9)] == [b"two"]


CHECKS: list[Callable[[Engine], None]] = [
    lease_has_one_holder_until_released_or_expired,
    watermark_only_moves_forward,
    authorisation_keeps_the_newest_change,
    snapshots_never_go_back,
    backfill_progress_resumes_and_never_goes_back,
    parked_notices_come_back_in_order,
]
