"""PushOutbox driven directly: delivery, retries on the scaled schedule, the lost store and
push faults, with a fake sender and chosen times (no threads, no sockets)."""

from __future__ import annotations

import pytest

from shopee.sandbox import FaultConfig, SandboxConfig
from shopee.sandbox.pushes import (
    AttemptResult,
    PushMessage,
    PushOutbox,
    encode_push,
    order_status_push,
)

T0 = 1_700_000_000.0
URL = "https://example.com/shopee/push"


def message(n: int, code: int = 3) -> PushMessage:
    payload = order_status_push(
        shop_id=727720655,
        order_sn=f"220810QSK8S7{n:02d}",
        status="PROCESSED",
        update_time=int(T0),
        completed_scenario="",
        timestamp=int(T0),
        msg_id=f"{n:032x}",
    )
    payload["code"] = code
    return PushMessage(f"{n:032x}", code, 727720655, int(T0), encode_push(payload))


class FakeSender:
    def __init__(self, ok: bool) -> None:
        self.ok = ok
        self.sent: list[tuple[str, str | None]] = []

    def __call__(self, push: PushMessage, url: str | None) -> AttemptResult:
        self.sent.append((push.msg_id, url))
        return AttemptResult(self.ok, url, 204 if self.ok else 500, "fake")


def run_at(box: PushOutbox, when: float, sender: FakeSender) -> int:
    return box.run_due(lambda: when, sender)


def outbox(**config: object) -> PushOutbox:
    settings: dict[str, object] = {"callback_url": URL}
    settings.update(config)
    return PushOutbox(SandboxConfig.model_validate(settings))


def test_bodies_are_compact_json_in_shopees_field_order() -> None:
    assert message(1).body == (
        b'{"msg_id":"00000000000000000000000000000001","data":{"items":[],'
        b'"ordersn":"220810QSK8S701","status":"PROCESSED","completed_scenario":"",'
        b'"update_time":1700000000},"shop_id":727720655,"code":3,"timestamp":1700000000}'
    )


def test_a_successful_delivery_happens_once() -> None:
    box = outbox()
    sender = FakeSender(ok=True)
    box.emit(message(1), T0, FaultConfig())
    assert run_at(box, T0, sender) == 1
    assert run_at(box, T0 + 100_000, sender) == 0
    assert sender.sent == [(f"{1:032x}", URL)]
    assert box.summary()["delivered"] == 1 and box.lost() == []


@pytest.mark.parametrize("time_factor", [1.0, 0.001])
def test_failures_retry_after_300_1800_10800_scaled_then_the_push_is_lost(
    time_factor: float,
) -> None:
    box = outbox(time_factor=time_factor)
    sender = FakeSender(ok=False)
    box.emit(message(1), T0, FaultConfig())
    now = T0
    for delay in (0.0, 300.0, 1800.0, 10800.0):
        scaled = delay * time_factor
        if scaled:
            assert run_at(box, now + scaled * 0.999, sender) == 0
        now += scaled
        assert run_at(box, now, sender) == 1
    assert [a.attempt for a in box.attempts()] == [1, 2, 3, 4]
    assert [a.at for a in box.attempts()] == pytest.approx(
        [T0, T0 + 300 * time_factor, T0 + 2100 * time_factor, T0 + 12900 * time_factor]
    )
    (lost,) = box.lost()
    assert lost.lost_at == pytest.approx(now) and lost.message == message(1)
    assert box.next_due() is None


def test_without_a_callback_url_pushes_are_lost_at_once() -> None:
    box = outbox(callback_url=None)
    box.emit(message(1), T0, FaultConfig())
    assert box.next_due() is None
    assert [entry.lost_at for entry in box.lost()] == [T0]


def test_lost_pages_hold_the_earliest_100_until_confirmed_and_expire_after_three_days() -> None:
    box = outbox(callback_url=None)
    for n in range(130):
        box.emit(message(n), T0 + n, FaultConfig())
    page = box.lost_page(T0 + 200)
    assert len(page.entries) == 100 and page.has_next_page
    assert page.last_message_id == page.entries[-1].message_id
    box.confirm_lost(page.last_message_id)
    rest = box.lost_page(T0 + 200)
    assert len(rest.entries) == 30 and not rest.has_next_page
    # Three days after the 110th was lost, only the last 20 are still listed.
    assert len(box.lost_page(T0 + 110 + 3 * 86400).entries) == 20
    box.confirm_lost(rest.last_message_id)
    empty = box.lost_page(T0 + 200)
    assert empty.entries == [] and empty.last_message_id == 0


def test_unsubscribed_codes_are_not_pushed() -> None:
    box = outbox(push_codes=frozenset({3}))
    box.emit(message(1, code=4), T0, FaultConfig())
    assert box.messages() == [] and box.next_due() is None


@pytest.mark.parametrize(("to_lost", "lost", "dropped"), [(True, 1, 0), (False, 0, 1)])
def test_drop_fault(to_lost: bool, lost: int, dropped: int) -> None:
    box = outbox()
    box.emit(message(1), T0, FaultConfig(push_drop_rate=1, dropped_push_to_lost_store=to_lost))
    assert (len(box.lost()), len(box.dropped()), box.next_due()) == (lost, dropped, None)


def test_duplicate_fault_delivers_the_same_body_twice() -> None:
    box = outbox()
    sender = FakeSender(ok=True)
    box.emit(message(1), T0, FaultConfig(push_duplicate_rate=1))
    assert run_at(box, T0, sender) == 2
    assert sender.sent[0] == sender.sent[1]


def test_push_faults_are_reproducible_from_the_seed() -> None:
    def dues(seed: int) -> list[float]:
        box = outbox(seed=seed)
        faults = FaultConfig(push_reorder_max_delay_seconds=30, push_duplicate_rate=0.3)
        for n in range(20):
            box.emit(message(n), T0, faults)
        return [delivery.due for delivery in box.deliveries()]

    assert dues(1) == dues(1)
    assert dues(1) != dues(2)
    assert all(T0 <= due <= T0 + 30 for due in dues(1))
