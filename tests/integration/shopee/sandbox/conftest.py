"""Fixtures for the sandbox's HTTP tests: servers on free ports, a signed caller, a receiver.

These need no broker; each test gets its own sandbox, stopped when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shopee.sandbox import ManualClock, SandboxConfig, SandboxServer
from tests.integration.shopee.sandbox.support import (
    PARTNER_ID,
    PARTNER_KEY,
    MakeSandbox,
    PushReceiver,
    ShopeeCaller,
)


@pytest.fixture
def make_sandbox() -> Iterator[MakeSandbox]:
    """``make_sandbox(clock=None, **config)``: a started sandbox with the test partner."""
    servers: list[SandboxServer] = []

    def make(clock: ManualClock | None = None, **config: Any) -> SandboxServer:
        config.setdefault("partner_id", PARTNER_ID)
        config.setdefault("partner_key", PARTNER_KEY)
        server = SandboxServer(SandboxConfig(**config), clock=clock)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> SandboxServer:
    return make_sandbox()


@pytest.fixture
def make_caller() -> Iterator[Callable[[SandboxServer], ShopeeCaller]]:
    callers: list[ShopeeCaller] = []

    def make(server: SandboxServer) -> ShopeeCaller:
        caller = ShopeeCaller(server)
        callers.append(caller)
        return caller

    yield make
    for caller in callers:
        caller.close()


@pytest.fixture
def caller(
    sandbox: SandboxServer, make_caller: Callable[[SandboxServer], ShopeeCaller]
) -> ShopeeCaller:
    return make_caller(sandbox)


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    started = PushReceiver().start()
    yield started
    started.stop()
