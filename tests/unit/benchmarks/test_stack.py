"""A harness stopped by SIGTERM unwinds as on Ctrl-C, and the signal's handling is restored."""

from __future__ import annotations

import os
import signal
import time

import pytest

from benchmarks.stack import sigterm_as_interrupt


def test_sigterm_unwinds_the_block_and_its_handler_is_restored_after() -> None:
    before = signal.getsignal(signal.SIGTERM)
    unwound = []
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # interrupted by the handler
        finally:
            unwound.append(True)
    assert unwound == [True]
    assert signal.getsignal(signal.SIGTERM) is before
