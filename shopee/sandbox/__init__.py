"""A Shopee Open Platform (API v2) simulator for tests, demos and benchmarks.

It answers the real paths with the real envelopes (signing, timestamps, tokens, order list and
detail, cancellation, stock, lost pushes), delivers signed pushes with Shopee's retry schedule,
injects faults, and can generate seeded order traffic. See ``SandboxServer`` to run it over
HTTP and ``SandboxState`` to use the same world without HTTP.
"""

from shopee.sandbox.calls import RecordedCall
from shopee.sandbox.clock import Clock, ManualClock, SystemClock
from shopee.sandbox.config import FaultConfig, SandboxConfig
from shopee.sandbox.errors import (
    InsufficientStock,
    InvalidTransition,
    SandboxError,
    ShopeeApiError,
    UnknownEntity,
)
from shopee.sandbox.server import SandboxServer
from shopee.sandbox.state import SandboxState
from shopee.sandbox.traffic import LifecycleOdds, TrafficGenerator

__all__ = [
    "Clock",
    "FaultConfig",
    "InsufficientStock",
    "InvalidTransition",
    "LifecycleOdds",
    "ManualClock",
    "RecordedCall",
    "SandboxConfig",
    "SandboxError",
    "SandboxServer",
    "SandboxState",
    "ShopeeApiError",
    "SystemClock",
    "TrafficGenerator",
    "UnknownEntity",
]
