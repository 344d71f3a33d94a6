"""The real stack for benchmarks, found the way `make test` finds it.

The stack named by ``ORDERFLOW_*`` if it answers, else the one `make up` started (the
Makefile's ``STACK_ENV``, done here so that plain `make bench` reuses it), else a new one on
free ports that is stopped again on the way out. A stack this process did not start is never
stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from tests.integration.stack import STACK_SCRIPT, Stack, find_or_start, parse_env, stop


def _make_up_env() -> dict[str, str]:
    """The ``ORDERFLOW_*`` exports of the stack `make up` started, or nothing."""
    status = subprocess.run(
        [str(STACK_SCRIPT), "status"], capture_output=True, text=True, check=False
    )
    if not any(line.startswith("kafka: running") for line in status.stdout.splitlines()):
        return {}
    env = subprocess.run([str(STACK_SCRIPT), "env"], capture_output=True, text=True, check=False)
    return parse_env(env.stdout)


@contextmanager
def running_stack(stack: Stack | None = None) -> Iterator[Stack]:
    """``stack`` itself when given (the caller owns it); otherwise find or start one."""
    if stack is not None:
        yield stack
        return
    if not os.environ.get("ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS"):
        for name, value in _make_up_env().items():
            os.environ.setdefault(name, value)
    found = find_or_start()
    where = "started for this run" if found.stack_dir is not None else "reused"
    print(f"stack: Kafka {found.bootstrap_servers}, registry {found.registry_url} ({where})")
    try:
        yield found
    finally:
        if found.stack_dir is not None:
            stop(found.stack_dir)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Until the block ends, SIGTERM raises ``KeyboardInterrupt`` (in the main thread), so a
    harness stopped by a signal tears down what it started (stacks, brokers, processes) as
    it does on Ctrl-C. By default SIGTERM ends Python at once, and the JVMs it started kept
    running with their ports and memory."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
