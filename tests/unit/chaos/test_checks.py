"""The chaos pass criteria over plain values: each criterion fails on the one thing it
guards and on nothing else."""

from __future__ import annotations

from dataclasses import replace

from chaos.checks import (
    AckedPush,
    CancelCall,
    Observation,
    OrderState,
    cancels_per_order,
    erp_differences,
    judge,
    lost_acked_pushes,
    stock_differences,
    undelivered,
)

SHOP = 101
A = (SHOP, "A")
B = (SHOP, "B")
READY = OrderState("READY_TO_SHIP", 1000, ((1, 0, 2),))
SHIPPED = OrderState("SHIPPED", 1060, ((1, 0, 2),))
CANCELLED = OrderState("CANCELLED", 1030, ((2, 1, 1),))


def healthy() -> Observation:
    """A run that left nothing wrong."""
    return Observation(
        truth={A: SHIPPED, B: CANCELLED},
        erp={A: SHIPPED, B: CANCELLED},
        stock={(1, 0): (98, 0), (2, 1): (5, 0)},
        ledger={(1, 0): (98, 0), (2, 1): (5, 0)},
        cancel_calls=(
            CancelCall("B", handled=False, applied=False),  # refused unprocessed: may resend
            CancelCall("B", handled=True, applied=True),
        ),
        acked_pushes=(
            AckedPush("m1", SHOP, "A", 1000),
            AckedPush("m2", SHOP, "A", 1060),
            AckedPush("m2", SHOP, "A", 1060),  # a duplicate delivery of the same push
            AckedPush("m3", SHOP, "A", None),  # a tracking-number push
        ),
        notice_msg_ids=frozenset({"m1", "m2", "m3", "m-poll-only"}),
        unread={"erp-sync": 0, "stock-restore": 0, "auto-cancel": 0, "enricher": 0},
        open_outbox_calls=0,
        parked={"enricher": 0, "auto-cancel": 0},
        pending_pushes=0,
        unconfirmed_lost_pushes=0,
        dead_letters={"enricher": 0, "erp-sync": 0},
    )


def test_a_healthy_run_passes_with_its_figures() -> None:
    verdict = judge(healthy())
    assert verdict.passed
    assert (verdict.acked_pushes_lost, verdict.max_cancels_per_order, verdict.undelivered) == (
        0,
        1,
        0,
    )
    assert verdict.stock_equals_ledger and verdict.erp_equals_truth
    assert verdict.examples == {} and verdict.undelivered_by_kind == {}


def test_an_acked_push_without_its_notice_is_lost() -> None:
    observed = replace(healthy(), notice_msg_ids=frozenset({"m1", "m3"}))
    assert lost_acked_pushes(observed.acked_pushes, observed.notice_msg_ids, observed.erp) == [
        "A push m2: no notice"
    ]
    verdict = judge(observed)
    assert verdict.acked_pushes_lost == 1 and not verdict.passed


def test_an_acked_push_whose_change_the_erp_never_got_is_lost() -> None:
    behind = replace(healthy(), erp={A: READY, B: CANCELLED})
    assert lost_acked_pushes(behind.acked_pushes, behind.notice_msg_ids, behind.erp) == [
        "A push m2: ERP at update_time 1000, the push at 1060"
    ]
    missing = replace(healthy(), erp={B: CANCELLED})
    # Every push of the missing order is lost, the tracking-number push included.
    assert len(lost_acked_pushes(missing.acked_pushes, missing.notice_msg_ids, missing.erp)) == 3


def test_the_erp_must_equal_shopee_order_by_order() -> None:
    assert erp_differences({A: SHIPPED}, {A: SHIPPED}) == []
    assert erp_differences({A: SHIPPED}, {A: READY}) == [f"A: ERP {READY}, Shopee {SHIPPED}"]
    assert erp_differences({A: SHIPPED}, {}) == [f"A: ERP None, Shopee {SHIPPED}"]
    assert erp_differences({}, {A: SHIPPED}) == [f"A: ERP {SHIPPED}, Shopee None"]
    other_lines = replace(SHIPPED, lines=((1, 0, 3),))
    assert not judge(replace(healthy(), erp={A: other_lines, B: CANCELLED})).erp_equals_truth


def test_only_cancels_shopee_acted_on_count() -> None:
    calls = [
        CancelCall("B", handled=False, applied=False),
        CancelCall("B", handled=False, applied=False),
        CancelCall("B", handled=True, applied=True),
        CancelCall("C", handled=True, applied=True),
        # Applied, the caller told otherwise, then sent again: refused, but acted on twice.
        CancelCall("C", handled=True, applied=False),
    ]
    assert cancels_per_order(calls) == {"B": 1, "C": 2}
    verdict = judge(replace(healthy(), cancel_calls=tuple(calls)))
    assert verdict.max_cancels_per_order == 2 and not verdict.passed
    assert verdict.examples["repeated_cancels"] == ["C: 2 cancel_order calls"]


def test_stock_must_equal_the_ledger_model_by_model() -> None:
    assert stock_differences({(1, 0): (5, 1)}, {(1, 0): (5, 1)}) == []
    assert stock_differences({(1, 0): (5, 1)}, {(1, 0): (5, 2)}) == [
        "(1, 0): stock (5, 1), ledger (5, 2)"
    ]
    # A model with no ledger rows holds nothing; one the ledger knows must be in stock.
    assert stock_differences({(1, 0): (0, 0)}, {}) == []
    assert stock_differences({}, {(1, 0): (5, 0)}) == ["(1, 0): stock None, ledger (5, 0)"]
    assert not judge(replace(healthy(), ledger={(1, 0): (97, 0), (2, 1): (5, 0)})).passed


def test_anything_in_flight_or_stuck_is_undelivered() -> None:
    stuck = replace(
        healthy(),
        unread={"erp-sync": 3, "enricher": 0},
        open_outbox_calls=1,
        parked={"auto-cancel": 2},
        pending_pushes=4,
        unconfirmed_lost_pushes=5,
        dead_letters={"stock-restore": 6},
    )
    assert undelivered(stuck) == {
        "unread erp-sync": 3,
        "parked auto-cancel": 2,
        "dead letters stock-restore": 6,
        "open outbox calls": 1,
        "pending pushes": 4,
        "unconfirmed lost pushes": 5,
    }
    verdict = judge(stuck)
    assert verdict.undelivered == 21 and not verdict.passed
    for single in (
        replace(healthy(), pending_pushes=1),
        replace(healthy(), unconfirmed_lost_pushes=1),
        replace(healthy(), open_outbox_calls=1),
        replace(healthy(), dead_letters={"enricher": 1}),
        replace(healthy(), parked={"enricher": 1}),
        replace(healthy(), unread={"enricher": 1}),
    ):
        assert judge(single).undelivered == 1
