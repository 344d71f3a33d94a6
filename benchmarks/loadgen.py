"""Signed Shopee pushes over keep-alive HTTP/1.1 connections, from a process of their own.

Two shapes of load, both over ``connections`` connections opened before the clock starts:

* closed loop: every connection sends its next push as soon as the last one was answered;
  the figure is answers per second within the measured window;
* open loop: pushes are fired on a fixed schedule (``rate`` per second) whatever is still in
  flight, and each latency runs from the *scheduled* send to the answer, so a server that
  falls behind is charged for the queue it causes (no coordinated omission). A push waits for
  a free connection when all are busy, and that wait counts too.

The first ``warmup`` seconds are sent but not measured. Every push is a code-3
order_status_push with its own order_sn, signed with ``sign_push`` for the exact callback URL.

The client is a few lines over asyncio streams rather than httpx: in this project's
environment httpx's async client managed 300-550 requests/s per process however many
connections it had (httpcore also retries ``import sniffio``, which is not installed, on every
request), about the open-loop rate itself and a tenth of what the bare endpoint serves, so it
would have measured itself.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from benchmarks.cpu import Cpu, CpuSample
from benchmarks.cpu import mean as cpu_mean
from shopee.sandbox.pushes import encode_push, order_status_push
from shopee.signing import sign_push


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str
    callback_url: str  # what the signature covers, exactly as registered
    push_key: str
    shop_id: int
    order_prefix: str  # keeps order_sn distinct across runs
    server_pid: int | None = None  # whose CPU time to report


@dataclass(frozen=True)
class Load:
    connections: int
    warmup: float
    duration: float
    rate: float | None = None  # None: closed loop


@dataclass
class Outcome:
    seconds: float  # the measured window
    answered: int  # 2xx answers within the window (closed loop) or to pushes scheduled in it
    statuses: Counter[int] = field(default_factory=Counter)  # all pushes; 0 = connection error
    latencies: list[float] = field(default_factory=list)  # open loop, seconds, window only
    cpu: Cpu | None = None
    connections: int = 0  # how many the load was driven over

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies, in seconds."""
        ordered = sorted(self.latencies)
        return ordered[max(0, min(len(ordered), math.ceil(q / 100 * len(ordered))) - 1)]


class _Pushes:
    """Request bytes of successive signed pushes, each for a new order."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._count = 0
        self._head = (
            f"POST {target.path} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()

    def next(self) -> bytes:
        self._count += 1
        now = int(time.time())
        body = encode_push(
            order_status_push(
                shop_id=self._target.shop_id,
                order_sn=f"{self._target.order_prefix}{self._count:07d}",
                status="READY_TO_SHIP",
                update_time=now,
                completed_scenario="",
                timestamp=now,
                msg_id=f"{self._count:032x}",
            )
        )
        signature = sign_push(self._target.push_key, self._target.callback_url, body)
        return (
            self._head
            + f"Authorization: {signature}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, target: Target) -> _Connection:
        # open_connection sets TCP_NODELAY: each request is a single write anyway.
        reader, writer = await asyncio.open_connection(target.host, target.port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> int:
        """Send one request and read its whole answer; returns the status code."""
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        if b"\r\ntransfer-encoding:" in lowered:
            raise ValueError("chunked answers are not expected from a push endpoint")
        start = lowered.find(b"\r\ncontent-length:")
        if start >= 0:
            end = lowered.index(b"\r\n", start + 2)
            length = int(lowered[start + 17 : end])
            if length:
                await self._reader.readexactly(length)
        return status

    def close(self) -> None:
        self._writer.close()


async def _exchange(
    connection: _Connection, target: Target, request: bytes
) -> tuple[int, _Connection]:
    """Status 0 and a fresh connection when this one broke."""
    try:
        return await connection.exchange(request), connection
    except (OSError, asyncio.IncompleteReadError, ValueError):
        connection.close()
        return 0, await _Connection.open(target)


async def _cpu_over_window(server_pid: int | None, start: float, end: float) -> Cpu:
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    first = CpuSample.take(server_pid)
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    return first.until(CpuSample.take(server_pid))


async def closed_loop(target: Target, load: Load) -> Outcome:
    connections = [await _Connection.open(target) for _ in range(load.connections)]
    pushes = _Pushes(target)
    start = time.monotonic() + load.warmup
    end = start + load.duration
    outcome = Outcome(seconds=load.duration, answered=0, connections=load.connections)

    async def keep_sending(connection: _Connection) -> None:
        while time.monotonic() < end:
            status, connection = await _exchange(connection, target, pushes.next())
            outcome.statuses[status] += 1
            if 200 <= status < 300 and start <= time.monotonic() < end:
                outcome.answered += 1
        connection.close()

    cpu = asyncio.create_task(_cpu_over_window(target.server_pid, start, end))
    await asyncio.gather(*(keep_sending(c) for c in connections))
    outcome.cpu = await cpu
    return outcome


async def open_loop(target: Target, load: Load) -> Outcome:
    assert load.rate is not None
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(load.connections):
        idle.put_nowait(await _Connection.open(target))
    pushes = _Pushes(target)
    first = time.monotonic() + 0.1
    start = first + load.warmup
    total = round(load.rate * (load.warmup + load.duration))
    outcome = Outcome(seconds=load.duration, answered=0, connections=load.connections)

    async def one(scheduled: float) -> None:
        connection = await idle.get()
        status, connection = await _exchange(connection, target, pushes.next())
        answered = time.monotonic()
        idle.put_nowait(connection)
        outcome.statuses[status] += 1
        if scheduled >= start and 200 <= status < 300:
            outcome.answered += 1
            outcome.latencies.append(answered - scheduled)

    cpu = asyncio.create_task(_cpu_over_window(target.server_pid, start, start + load.duration))
    fired: list[asyncio.Task[None]] = []
    for i in range(total):
        scheduled = first + i / load.rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        fired.append(asyncio.create_task(one(scheduled)))
    await asyncio.wait_for(asyncio.gather(*fired), timeout=30)
    outcome.cpu = await cpu
    while not idle.empty():
        idle.get_nowait().close()
    return outcome


def _drive(jobs: list[tuple[Target, Load]], results: Connection) -> None:
    for target, load in jobs:
        shape = closed_loop if load.rate is None else open_loop
        results.send(asyncio.run(shape(target, load)))
    results.close()


def run_loads(jobs: list[tuple[Target, Load]]) -> list[Outcome]:
    """Drive each target with its load, one after the other, from one new process; returns
    what each measured."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_drive, args=(jobs, sender), daemon=True)
    process.start()
    sender.close()
    outcomes: list[Outcome] = []
    try:
        for _, load in jobs:
            if not receiver.poll(load.warmup + load.duration + 60):
                raise RuntimeError("the load generator did not report in time")
            outcomes.append(receiver.recv())
    except EOFError as exc:
        raise RuntimeError(f"the load generator died (exit code {process.exitcode})") from exc
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
    return outcomes


def pooled(outcomes: list[Outcome]) -> Outcome:
    """Several measured windows as one: counts and latencies added up, CPU averaged."""
    seconds = sum(o.seconds for o in outcomes)
    statuses: Counter[int] = Counter()
    for o in outcomes:
        statuses.update(o.statuses)
    return Outcome(
        seconds=seconds,
        answered=sum(o.answered for o in outcomes),
        statuses=statuses,
        latencies=[x for o in outcomes for x in o.latencies],
        cpu=cpu_mean([(o.cpu, o.seconds) for o in outcomes if o.cpu is not None]),
        connections=max((o.connections for o in outcomes), default=0),
    )
