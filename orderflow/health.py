"""The HTTP side every orderflow process serves: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` answers 200 while the process is alive (and its main loop, if it reports one,
has made progress recently); ``/readyz`` answers 200 only while the process can do its job
(Kafka reachable, ...); ``/metrics`` is the Prometheus text format of the process's registry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from orderflow.metrics import Metrics

log = logging.getLogger(__name__)

Check = Callable[[], bool]


def _always() -> bool:
    return True


class HealthServer:
    """Serves the three endpoints from a daemon thread; ``port=0`` picks a free port."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        ready: Check = _always,
        alive: Check = _always,
        host: str = "0.0.0.0",  # noqa: S104 - probes and Prometheus reach the pod's address
        port: int = 9400,
    ) -> None:
        self._metrics = metrics
        self._ready = ready
        self._alive = alive
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-server", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        log.info("health and metrics server listening on port %d", self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(
                        200, generate_latest(server._metrics.registry), CONTENT_TYPE_LATEST
                    )
                elif path == "/healthz":
                    self._probe(server._alive)
                elif path == "/readyz":
                    self._probe(server._ready)
                else:
                    self._answer(404, b"not found\n")

            def _probe(self, check: Check) -> None:
                try:
                    ok = check()
                except Exception:
                    log.exception("health check raised")
                    ok = False
                self._answer(200 if ok else 503, b"ok\n" if ok else b"unavailable\n")

            def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                # Probes arrive every few seconds; they are not worth a log line each.
                return

        return Handler
