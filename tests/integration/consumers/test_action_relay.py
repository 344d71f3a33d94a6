"""The relay process that publishes a consumer's actions lives and dies with its consumer:
killed consumers leave no relay behind, and a relay that dies stops its consumer."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from consumers.publishing import RelayFailed, RelayProcess
from tests.integration.consumers.conftest import ConsumerWorld, wait_for
from tests.integration.consumers.events import order_event

SHOP = 601999


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone meanwhile
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie has exited


def test_a_killed_consumer_leaves_no_relay_behind(world: ConsumerWorld) -> None:
    erp = world.process("erp-sync")

    def relays() -> list[int]:
        erp.assert_running()
        return [pid for pid, cmd in children(erp.process.pid).items() if "spawn_main" in cmd]

    wait_for(lambda: len(relays()) == 1, "the relay started")
    (relay,) = relays()

    erp.process.send_signal(signal.SIGKILL)
    erp.process.wait(10)
    wait_for(lambda: not alive(relay), "the orphaned relay exits", timeout=30)


def test_a_relay_that_dies_stops_its_consumer_loudly(world: ConsumerWorld) -> None:
    world.writer.send([order_event(SHOP, "A", update_time=int(time.time()) - 60)])
    erp = world.consumer("erp-sync")
    world.catch_up(erp)
    relay = erp.runtime.actions
    assert isinstance(relay, RelayProcess) and relay.pid is not None

    os.kill(relay.pid, signal.SIGKILL)
    with pytest.raises(RelayFailed, match="action relay stopped"):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            erp.runtime.run_once(erp.parts.stop)
