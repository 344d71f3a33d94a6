"""Python's cyclic garbage collector, set for the consumer and relay loops.

A consumer keeps a batch (hundreds of events, rows and actions) alive while it works on it,
and the relay keeps a round of records and their acknowledgements. With the default
thresholds (a young collection every 700 net allocations) the collector walked those objects
hundreds of times a batch, about a tenth of erp-sync's time. ``tuned`` freezes everything
alive when the loop starts (modules, engines, clients: never garbage) out of the collector's
way and collects young objects every 10,000 net allocations instead: cycles are still found,
in larger steps.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLDS = (10_000, 20, 20)


@contextmanager
def tuned() -> Iterator[None]:
    """The collector set for a loop until the block ends, then as it was."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
