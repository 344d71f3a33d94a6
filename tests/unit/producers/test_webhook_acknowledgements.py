"""Kafka's answers reach the webhook's event loop from the producer's I/O thread, many per
loop wake-up, each to its own waiter."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from orderflow.kafka import KafkaUnavailable, Outcome, Placed
from producers.webhook import Acknowledgements, Deadlines


def _counting_wakeups(loop: asyncio.AbstractEventLoop) -> list[int]:
    """Count the loop's wake-ups from other threads (``call_soon_threadsafe``)."""
    wakeups = [0]
    original = loop.call_soon_threadsafe

    def counted(callback: Callable[..., object], *args: Any) -> asyncio.Handle:
        wakeups[0] += 1
        return original(callback, *args)

    loop.call_soon_threadsafe = counted  # type: ignore[method-assign, assignment]
    return wakeups


def test_answers_from_another_thread_settle_their_own_waiters_with_one_wakeup() -> None:
    async def scenario() -> None:
        wakeups = _counting_wakeups(asyncio.get_running_loop())
        acknowledgements = Acknowledgements()
        waiters = [acknowledgements.waiter() for _ in range(50)]

        def broker_answers() -> None:
            for i, (_, on_done) in enumerate(waiters):
                on_done(KafkaUnavailable(f"no {i}") if i % 10 == 3 else (i % 6, 1000 + i))

        # The loop is held up while the whole batch arrives, as it is under load.
        answering = threading.Thread(target=broker_answers)
        answering.start()
        answering.join()
        results = await asyncio.gather(*(w for w, _ in waiters), return_exceptions=True)

        for i, result in enumerate(results):
            if i % 10 == 3:
                assert isinstance(result, KafkaUnavailable) and str(result) == f"no {i}"
            else:
                assert result == (i % 6, 1000 + i)
        assert wakeups[0] == 1

    asyncio.run(scenario())


def test_answers_after_the_loop_took_the_last_batch_wake_it_again() -> None:
    async def scenario() -> None:
        wakeups = _counting_wakeups(asyncio.get_running_loop())
        acknowledgements = Acknowledgements()
        first, settle_first = acknowledgements.waiter()
        second, settle_second = acknowledgements.waiter()
        settle_first((0, 1))
        assert await first == (0, 1)
        threading.Thread(target=settle_second, args=((1, 2),)).start()
        assert await asyncio.wait_for(second, timeout=5) == (1, 2)
        assert wakeups[0] == 2

    asyncio.run(scenario())


def test_a_late_answer_for_a_waiter_that_gave_up_is_dropped_quietly() -> None:
    async def scenario() -> list[Outcome]:
        acknowledgements = Acknowledgements()
        gave_up, settle = acknowledgements.waiter()
        gave_up.set_exception(TimeoutError("no acknowledgement within 2.0s"))
        with pytest.raises(TimeoutError):
            await gave_up
        settle((0, 7))  # the record landed after all
        still_waiting, settle_other = acknowledgements.waiter()
        settle_other((0, 8))
        # Had the late answer raised inside the loop, this one would never be settled.
        return [await asyncio.wait_for(still_waiting, timeout=5)]

    assert asyncio.run(scenario()) == [(0, 8)]


def test_waiters_still_pending_at_their_deadline_fail_not_earlier() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(loop, granularity=0.01)
        started = loop.time()
        slow: asyncio.Future[Placed] = loop.create_future()
        quick: asyncio.Future[Placed] = loop.create_future()
        answered: asyncio.Future[Placed] = loop.create_future()
        deadlines.fail_after(slow, 0.2, 2.0)
        deadlines.fail_after(quick, 0.05, 2.0)  # due before the timer armed for ``slow``
        deadlines.fail_after(answered, 0.05, 2.0)
        answered.set_result((0, 1))
        with pytest.raises(TimeoutError, match=r"within 2\.0s"):
            await quick
        assert loop.time() - started >= 0.05  # never early
        assert await answered == (0, 1)  # left alone
        assert not slow.done()
        with pytest.raises(TimeoutError):
            await slow
        assert loop.time() - started >= 0.2

    asyncio.run(scenario())


def test_deadlines_due_together_take_one_timer() -> None:
    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        timers = [0]
        original = loop.call_at

        def counted(when: float, callback: Callable[..., object], *args: Any) -> Any:
            timers[0] += 1
            return original(when, callback, *args)

        loop.call_at = counted  # type: ignore[method-assign, assignment]
        deadlines = Deadlines(loop, granularity=0.05)
        waiters: list[asyncio.Future[Placed]] = [loop.create_future() for _ in range(100)]
        for waiter in waiters:
            deadlines.fail_after(waiter, 0.01, 1.0)
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(r, TimeoutError) for r in results)
        return timers[0]

    assert asyncio.run(scenario()) == 1
