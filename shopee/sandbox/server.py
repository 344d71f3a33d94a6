"""The sandbox as a running HTTP server: uvicorn in a background thread, plus the push worker.

    with SandboxServer(SandboxConfig(...)) as sb:
        sb.base_url        # "http://127.0.0.1:PORT"; clients append /api/v2/...
        sb.state           # the SandboxState behind it (shops, orders, lifecycle helpers)
        sb.calls           # every /api/v2 request so far

Leaving the ``with`` block stops traffic, the push worker and the server, and closes the port.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from shopee.sandbox.api import shopee_endpoint
from shopee.sandbox.calls import RecordedCall
from shopee.sandbox.clock import Clock
from shopee.sandbox.config import SandboxConfig
from shopee.sandbox.control import control_routes
from shopee.sandbox.pushes import (
    AttemptResult,
    HttpPushSender,
    PushOutbox,
    PushWorker,
    encode_push,
    verification_push,
)
from shopee.sandbox.state import SandboxState
from shopee.sandbox.traffic import LifecycleOdds, TrafficGenerator, TrafficRunner


class DeliberateDropFilter(logging.Filter):
    """Hides uvicorn's complaint about a response left incomplete: in the sandbox only the
    ``disconnect`` and ``timeout`` faults do that, on purpose (``api._NoAnswer``)."""

    MESSAGE = "ASGI callable returned without completing response."

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.MESSAGE


def _quiet_deliberate_drops() -> None:
    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, DeliberateDropFilter) for f in server_log.filters):
        server_log.addFilter(DeliberateDropFilter())


def create_app(state: SandboxState, traffic: TrafficRunner, sender: HttpPushSender) -> Starlette:
    """The ASGI app: Shopee's ``/api/v2/...`` routes and the ``/sandbox/...`` control routes."""

    def verify_callback(url: str) -> AttemptResult:
        return sender.post(encode_push(verification_push()), url)

    return Starlette(
        routes=[
            Route(
                "/api/v2/{path:path}",
                shopee_endpoint(state, verify_callback),
                methods=["GET", "POST", "PUT", "DELETE"],
            ),
            Mount("/sandbox", routes=control_routes(state, traffic, verify_callback)),
        ]
    )


class SandboxServer:
    """A Shopee Open Platform v2 simulator listening on ``host:port`` (0 = a free port)."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        state: SandboxState | None = None,
    ) -> None:
        if state is not None and (config is not None or clock is not None):
            raise ValueError("pass either a state or a config (and clock), not both")
        self.state = state if state is not None else SandboxState(config, clock=clock)
        self._host = host
        self._requested_port = port
        config = self.state.config
        self._sender = HttpPushSender(config.effective_push_key, config.push_timeout_seconds)
        self.traffic = TrafficRunner(self.state)
        self.app = create_app(self.state, self.traffic, self._sender)
        self._push_worker = PushWorker(
            self.state.pushes,
            self._sender,
            self.state.clock,
            concurrency=config.push_delivery_concurrency,
        )
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._stopped = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Bind the port, start serving and delivering pushes; returns once requests are
        answered."""
        if self._thread is not None or self._stopped:
            raise RuntimeError("a SandboxServer starts once; create a new one to run again")
        # An explicit IPPROTO_TCP makes asyncio set TCP_NODELAY on accepted connections;
        # without it every keep-alive response waits ~40 ms for a delayed ACK.
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        _quiet_deliberate_drops()
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name="sandbox-http",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sandbox HTTP server did not start")
            time.sleep(0.01)
        self._push_worker.start()

    def stop(self) -> None:
        """Stop traffic, push delivery and the server; idempotent."""
        self._stopped = True
        self.traffic.stop()
        self._push_worker.stop()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._sender.close()

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what callers use ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sandbox is not running")
        return self._port

    @property
    def base_url(self) -> str:
        """Scheme and host only, e.g. ``http://127.0.0.1:8123``; clients append /api/v2/..."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def calls(self) -> list[RecordedCall]:
        """Every /api/v2 request answered so far, in arrival order."""
        return self.state.call_log.snapshot()

    @property
    def pushes(self) -> PushOutbox:
        """Emitted pushes, delivery attempts and the lost store."""
        return self.state.pushes

    def set_callback_url(self, url: str | None) -> None:
        self.state.set_callback_url(url)

    def send_verification_push(self, url: str | None = None) -> AttemptResult:
        """POST the code-0 verification push to ``url`` (default: the callback URL) now."""
        return self._sender.post(encode_push(verification_push()), url or self.state.callback_url)

    def start_traffic(
        self,
        rate: float,
        *,
        seed: int | None = None,
        time_factor: float | None = None,
        odds: LifecycleOdds | None = None,
        shop_ids: list[int] | None = None,
    ) -> TrafficGenerator:
        """Start generating orders at ``rate`` per second (see :mod:`shopee.sandbox.traffic`)."""
        return self.traffic.start(
            rate=rate, seed=seed, time_factor=time_factor, odds=odds, shop_ids=shop_ids
        )

    def stop_traffic(self) -> None:
        self.traffic.stop()
