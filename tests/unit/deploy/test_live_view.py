"""deploy/local/live_view.py: `make run`'s figures, plain lines, live view and watch loops,
from a real orderflow metrics exposition and made-up sandbox answers (no processes)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client import generate_latest
from rich.console import Console

from deploy.local.live_view import (
    CONSUMERS,
    EXITED,
    ErpState,
    Figures,
    Reading,
    alive,
    clock,
    figures,
    parse_samples,
    per_second,
    short_api,
    status_lines,
    stop_after,
    summary_lines,
    view,
    watch_plain,
)
from orderflow.metrics import Metrics

HEALTH = {
    "webhook": "ready",
    "poller": "ready",
    "enricher": "NOT READY",
    "erp-sync": "ready",
    "stock-restore": "ready",
    "auto-cancel": "exited",
    "sandbox": "up",
}
SANDBOX_STATE: dict[str, Any] = {
    "orders_by_status": {"UNPAID": 10, "READY_TO_SHIP": 60, "CANCELLED": 5, "SHIPPED": 15},
    "pushes": {
        "emitted": 95,
        "delivered": 60,
        "lost": 30,
        "lost_unconfirmed": 2,
        "dropped": 0,
        "pending": 5,
    },
}


def exposition() -> str:
    """What the six processes' /metrics say together, from orderflow's own declarations."""
    m = Metrics()
    m.pushes.labels("3", "accepted").inc(66)
    m.pushes.labels("0", "verification").inc()
    for source, n in (("push", 66), ("poll", 40), ("lost_push", 14)):
        m.notices_produced.labels(source).inc(n)
    for source, n in (("push", 60), ("poll", 20), ("lost_push", 9)):
        m.events_emitted.labels(source).inc(n)
    m.changes_seen_first_by_poll.labels("poll").inc(20)
    m.changes_seen_first_by_poll.labels("lost_push").inc(9)
    m.notices_consumed.labels("push", "emitted").inc(60)
    m.notices_consumed.labels("poll", "unchanged").inc(40)
    m.shopee_requests.labels("/api/v2/order/get_order_detail", "ok").inc(50)
    m.shopee_requests.labels("/api/v2/order/get_order_detail", "retryable").inc(2)
    m.shopee_requests.labels("/api/v2/order/get_order_list", "ok").inc(12)
    m.shopee_requests.labels("/api/v2/order/cancel_order", "final").inc(1)
    for name in CONSUMERS:
        m.records_consumed.labels("shopee.orders", name, "applied").inc(89)
        m.consumer_lag_seconds.labels(name).set(0.4)
        m.dead_letters.labels(name)
    m.consumer_lag_seconds.labels("auto-cancel").set(42.5)
    m.dead_letters.labels("enricher").inc(1)
    m.dead_letters.labels("stock-restore").inc(2)
    m.consumer_parked_records.labels("erp-sync").set(4)
    m.order_actions.labels("erp-sync", "erp_upsert", "applied").inc(89)
    m.order_actions.labels("auto-cancel", "stock_reserve", "applied").inc(50)
    m.order_actions.labels("stock-restore", "stock_reserve", "applied").inc(30)
    m.order_actions.labels("stock-restore", "stock_restore", "applied").inc(3)
    m.order_actions.labels("stock-restore", "stock_deduct", "applied").inc(7)
    m.order_actions.labels("auto-cancel", "cancel_order", "applied").inc(6)
    m.order_actions.labels("auto-cancel", "cancel_order", "rejected").inc(1)
    m.order_actions.labels("auto-cancel", "buyer_cancellation", "applied").inc(2)
    m.auto_cancel_decisions.labels("100001", "cancel").inc(7)
    m.auto_cancel_decisions.labels("100002", "over_budget").inc(1)
    m.shop_blocked.labels("poller", "100002", "auth").set(1)
    return generate_latest(m.registry).decode()


def reading(**changes: Any) -> Reading:
    values: dict[str, Any] = {
        "health": HEALTH,
        "samples": parse_samples(exposition()),
        "sandbox": SANDBOX_STATE,
        "calls": {"order.cancel_order": 7, "order.handle_buyer_cancellation": 2},
        "erp": ErpState(orders=88, models=17, reserved=120, none_left=3),
    }
    return Reading(**(values | changes))


def line(lines: list[str], start: str) -> str:
    found = [text for text in lines if text.startswith(start)]
    assert len(found) == 1, (start, lines)
    return found[0]


def test_figures_count_every_stage_from_the_exposition() -> None:
    f = figures(reading())
    assert f.notices == {"push": 66, "poll": 40, "lost_push": 14}
    assert sum(f.events.values()) == 89
    assert f.first_seen_by_poll == 29
    assert f.api_calls == {"get_order_detail": 52, "get_order_list": 12, "cancel_order": 1}
    assert f.api_errors == {"get_order_detail": 2, "cancel_order": 1}
    # Reservations by either stock consumer count together.
    assert (f.upserts, f.reserves, f.restocks, f.deducts) == (89, 80, 3, 7)
    assert f.cancels == {"applied": 6, "rejected": 1}
    assert f.answers["applied"] == 2
    assert f.consumers["auto-cancel"].lag_seconds == 42.5
    assert f.consumers["stock-restore"].dead_letters == 2
    assert f.consumers["erp-sync"].parked == 4
    assert f.dead_letters["enricher"] == 1
    assert f.blocked == ["100002 (auth, poller)"]
    assert f.totals()["orders"] == 90


def test_status_lines_lead_with_a_fixed_word_per_stage() -> None:
    lines = status_lines(figures(reading()))
    assert line(lines, "orders ") == (
        "orders    90 in the sandbox: UNPAID 10, READY_TO_SHIP 60, SHIPPED 15, CANCELLED 5"
    )
    assert "30 lost (28 drained by the poller)" in line(lines, "pushes ")
    assert line(lines, "notices ") == "notices   120 written: push 66, poll 40, lost_push 14"
    assert re.match(r"events +89 emitted", line(lines, "events "))
    assert "not ok: final 1, retryable 2" in line(lines, "shopee ")
    assert line(lines, "erp ").startswith("erp       88 orders synced (89 upserts by erp-sync)")
    assert line(lines, "stock ") == (
        "stock     80 reservations, 3 restocks of cancelled orders, 7 deductions of shipped ones"
    )
    cancels = line(lines, "cancels ")
    assert cancels.startswith("cancels   6 orders cancelled as OUT_OF_STOCK (the sandbox answered")
    assert "short orders decided: cancel 7, over_budget 1; not applied: rejected 1" in cancels
    assert line(lines, "buyers ").startswith("buyers    2 cancellation requests answered")
    consumers = line(lines, "consumers ")
    assert "auto-cancel 89 records, lag 42.5 s" in consumers
    assert "dead letters: enricher 1, stock-restore 2" in consumers
    assert "parked (blocked shops): erp-sync 4" in consumers
    health = line(lines, "health ")
    assert "enricher NOT READY" in health and "auto-cancel exited" in health
    assert health.endswith("shops set aside: 100002 (auth, poller)")


def test_summary_lines_say_what_each_counts() -> None:
    lines = summary_lines(figures(reading()))
    assert line(lines, "events emitted: ").startswith("events emitted: 89 (push 60, poll 20")
    assert line(lines, "ERP: ").startswith("ERP: 88 orders synced; 120 units reserved")
    assert line(lines, "stock: ").startswith("stock: 80 reservations")
    assert line(lines, "auto-cancels: ").startswith("auto-cancels: 6 orders cancelled")
    assert line(lines, "shopee API: ") == "shopee API: 65 calls, not ok: final 1, retryable 2"


def test_what_does_not_answer_is_said_so() -> None:
    f = figures(reading(sandbox=None, calls={}, erp=None, samples=[]))
    lines = status_lines(f)
    assert line(lines, "orders ") == "orders    the sandbox does not answer"
    assert line(lines, "erp ") == "erp       the run's database does not answer"
    assert line(lines, "events ").startswith("events    0 emitted")
    assert "dead letters: none yet" in line(lines, "consumers ")
    assert line(summary_lines(f), "ERP: ") == "ERP: the run's database does not answer"
    assert not any(text.startswith("orders in the sandbox") for text in summary_lines(f))


def render(f: Figures, rates: Mapping[str, float], width: int = 160) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(view(f, rates, elapsed=45, limit=60, about=["2 new orders/s over 2 shops"]))
    return console.export_text()


def test_the_live_view_shows_every_figure_the_issue_names() -> None:
    text = render(figures(reading()), {"events": 2.04, "erp": 0.0})
    assert "0:45 of traffic (stops at 1:00)" in text
    assert "2 new orders/s over 2 shops" in text
    for shown in (
        r"orders created +90",
        r"lost +30 +28 drained by the poller",
        r"lost_push +14 +9",  # orders ingested by source: notices and events
        r"total +120 +89 2\.0/s",
        r"ERP rows +88 0\.0/s",
        r"reservations +80",
        r"restocks +3",
        r"auto-cancels +6 +OUT_OF_STOCK; decided: cancel 7",
        r"not applied: rejected 1",
        r"buyer-cancel answers +2",
        r"get_order_detail +52 +2",  # Shopee API calls and errors
        r"auto-cancel +● exited +89 records +42\.5 s +0 +0",  # health, lag, DLQ, parked
        r"enricher +● NOT READY +100 notices +— +1",
        r"stock-restore +● ready +89 records +0\.4 s +2",
        r"sandbox +● up",
        r"shops set aside: 100002 \(auth, poller\)",
        r"Ctrl-C stops",
    ):
        assert re.search(shown, text), (shown, text)


def test_the_live_view_fits_a_narrow_terminal_and_survives_silence() -> None:
    f = figures(reading(sandbox=None, calls={}, erp=None, samples=[]))
    text = render(f, {}, width=80)
    assert "the sandbox does not" in text
    assert re.search(r"ERP rows +the run's", text)
    assert re.search(r"reservations +0", text)
    assert max(len(row) for row in text.splitlines()) <= 80


def test_per_second_measures_over_the_window() -> None:
    history = [
        (0.0, {"events": 0.0}),
        (5.0, {"events": 10.0}),
        (12.0, {"events": 30.0}),
        (15.0, {"events": 50.0}),
    ]
    # From the oldest entry within 10 s of the newest (t=5) to the newest.
    assert per_second(history) == {"events": 4.0}
    assert per_second(history, window=3.0) == {"events": pytest.approx(20 / 3)}
    assert per_second(history[:1]) == {}
    assert per_second([(0.0, {"events": 0.0}), (0.5, {"events": 9.0})]) == {}
    # A counter that went back (a restarted process) shows 0/s, not a negative rate.
    assert per_second([(0.0, {"events": 9.0}), (2.0, {"events": 1.0})]) == {"events": 0.0}


def test_stop_after_takes_the_sooner_of_rounds_and_duration() -> None:
    assert stop_after(rounds=0, interval=5, duration=0) is None
    assert stop_after(rounds=3, interval=2, duration=0) == 6
    assert stop_after(rounds=0, interval=2, duration=60) == 60
    assert stop_after(rounds=3, interval=2, duration=5) == 5


def test_clock_and_short_api() -> None:
    assert clock(5.9) == "0:05"
    assert clock(65) == "1:05"
    assert clock(3725) == "1:02:05"
    assert short_api("/api/v2/order/get_order_detail") == "get_order_detail"
    assert short_api("order.handle_buyer_cancellation") == "handle_buyer_cancellation"


class FakeLooker:
    """A run whose ``gone`` processes have exited."""

    def __init__(self, gone: list[str] | None = None) -> None:
        self.gone = gone or []
        self.looks = 0

    def look(self) -> Reading:
        self.looks += 1
        return reading()

    def exited(self) -> list[str]:
        return self.gone


def test_watch_plain_prints_rounds_then_ends(capsys: pytest.CaptureFixture[str]) -> None:
    looker = FakeLooker()
    code = watch_plain(looker, threading.Event(), interval=0.01, rounds=2, limit=None)
    assert (code, looker.looks) == (0, 2)
    out = capsys.readouterr().out
    assert re.findall(r"^== round (\d+), \d+ s$", out, re.MULTILINE) == ["1", "2"]
    assert len(re.findall(r"^events +89 emitted", out, re.MULTILINE)) == 2


def test_watch_plain_ends_at_the_duration_between_rounds() -> None:
    looker = FakeLooker()
    assert watch_plain(looker, threading.Event(), interval=60, rounds=0, limit=0.05) == 0
    assert looker.looks == 0


def test_watch_plain_stops_when_asked_or_when_a_process_exits() -> None:
    stop = threading.Event()
    stop.set()
    assert watch_plain(FakeLooker(), stop, interval=60, rounds=0, limit=None) == 0
    gone = FakeLooker(gone=["enricher"])
    assert watch_plain(gone, threading.Event(), interval=60, rounds=0, limit=None) == EXITED


def test_alive_tells_a_running_process_from_an_exited_one() -> None:
    assert alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not alive(child.pid)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
        assert not alive(zombie.pid)
    finally:
        zombie.wait()
