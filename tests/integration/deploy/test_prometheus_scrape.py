"""A real Prometheus server (the Debian package's binary) scrapes a running ``orderflow
webhook`` and a running ``orderflow consume erp-sync``, with orderflow's rules loaded.

Its query API returns both processes' series (including a push counted by the webhook a moment
before), every rule evaluates without error against them, every dashboard query is valid
PromQL, and ``promtool check metrics`` accepts each process's ``/metrics``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from orderflow.settings import Settings
from orderflow.topics import create_topics
from schemas.registry import SchemaRegistryClient
from shopee.signing import sign_push
from tests.integration.stack import free_ports

ROOT = Path(__file__).resolve().parents[3]
RULE_FILES = [
    ROOT / "deploy" / "prometheus" / "recording-rules.yml",
    ROOT / "deploy" / "prometheus" / "alert-rules.yml",
]
DASHBOARD = ROOT / "deploy" / "grafana" / "orderflow.json"
ORDERFLOW = str(Path(sys.executable).with_name("orderflow"))
PARTNER_ID = 2001887
PARTNER_KEY = "scrape-test-partner-key-0123456789"
ORDER_PUSH = (
    b'{"data":{"items":[],"ordersn":"2211250AB12CD","status":"READY_TO_SHIP",'
    b'"completed_scenario":"","update_time":1764060000},"shop_id":601234,"code":3,'
    b'"timestamp":1764060001}'
)


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: .ci/run installs the Debian package prometheus")
        pytest.skip(f"{name} is not installed (Debian package prometheus; .ci/run installs it)")
    return found


def wait_for(done: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``done`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.2)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    metrics_url: str

    def answers(self, path: str) -> bool:
        assert self.popen.poll() is None, f"{self.name} exited:\n{self.output()}"
        try:
            url = self.metrics_url.removesuffix("/metrics") + path
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


class Processes:
    """Child processes of one test, logging into its directory, all stopped at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Process] = []

    def start(
        self, name: str, command: list[str], env: dict[str, str], metrics_url: str
    ) -> Process:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            # The child keeps its own copy of the descriptor.
            popen = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        process = Process(name, popen, log, metrics_url)
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.started):
            process.stop()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop()


class PrometheusApi:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def answer(self, path: str, **params: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.base_url}{path}", params=params, timeout=10).json()
        return body

    def get(self, path: str, **params: str) -> Any:
        body = self.answer(path, **params)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=promql)["result"]
        return result

    def has(self, promql: str) -> bool:
        try:
            return bool(self.query(promql))
        except httpx.HTTPError:
            return False


def orderflow_env(settings: Settings, database: Path, **extra: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    return inherited | {
        "ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "ORDERFLOW_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        # One SQLite file per process: neither shares state with the other here.
        "ORDERFLOW_DATABASE_URL": f"sqlite:///{database}",
        "ORDERFLOW_TOPIC_NOTICES": settings.topic_notices,
        "ORDERFLOW_TOPIC_ORDERS": settings.topic_orders,
        "ORDERFLOW_TOPIC_ACTIONS": settings.topic_actions,
        "ORDERFLOW_SHOPEE_PARTNER_ID": str(PARTNER_ID),
        "ORDERFLOW_SHOPEE_PARTNER_KEY": PARTNER_KEY,
        "ORDERFLOW_HTTP_HOST": "127.0.0.1",
        "ORDERFLOW_LOG_LEVEL": "INFO",
        **extra,
    }


def prometheus_config(webhook_port: int, consumer_port: int) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in RULE_FILES],
        "scrape_configs": [
            {
                "job_name": "orderflow-webhook",
                "static_configs": [{"targets": [f"127.0.0.1:{webhook_port}"]}],
            },
            {
                "job_name": "orderflow-erp-sync",
                "static_configs": [{"targets": [f"127.0.0.1:{consumer_port}"]}],
            },
        ],
    }


def test_prometheus_scrapes_a_webhook_and_a_consumer(
    settings: Settings,
    registry: SchemaRegistryClient,
    unique: str,
    tmp_path: Path,
    processes: Processes,
) -> None:
    prometheus, promtool = tool("prometheus"), tool("promtool")
    create_topics(settings, registry)
    webhook_port, consumer_port, prometheus_port = free_ports(3)
    push_url = f"http://127.0.0.1:{webhook_port}/shopee/push"

    webhook = processes.start(
        "webhook",
        [ORDERFLOW, "webhook"],
        orderflow_env(
            settings,
            tmp_path / "webhook.db",
            ORDERFLOW_WEBHOOK_PORT=str(webhook_port),
            ORDERFLOW_WEBHOOK_PUBLIC_URL=push_url,
        ),
        f"http://127.0.0.1:{webhook_port}/metrics",
    )
    consumer = processes.start(
        "erp-sync",
        [ORDERFLOW, "consume", "erp-sync"],
        orderflow_env(
            settings,
            tmp_path / "erp.db",
            ORDERFLOW_METRICS_PORT=str(consumer_port),
            ORDERFLOW_CONSUMER_GROUP_PREFIX=f"t{unique}-",
        ),
        f"http://127.0.0.1:{consumer_port}/metrics",
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps(prometheus_config(webhook_port, consumer_port)))  # YAML ⊃ JSON
    checked = subprocess.run([promtool, "check", "config", str(config)], capture_output=True)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    server = processes.start(
        "prometheus",
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
            "--log.level=warn",
        ],
        dict(os.environ),
        f"http://127.0.0.1:{prometheus_port}/metrics",
    )
    api = PrometheusApi(f"http://127.0.0.1:{prometheus_port}")

    wait_for(lambda: webhook.answers("/readyz"), "the webhook ready")
    wait_for(lambda: consumer.answers("/healthz"), "erp-sync serving its health endpoints")
    wait_for(lambda: server.answers("/-/ready"), "Prometheus ready")

    # One push with a good signature (written to Kafka), one with a bad one.
    signature = sign_push(PARTNER_KEY, push_url, ORDER_PUSH)
    assert httpx.post(push_url, content=ORDER_PUSH, headers={"Authorization": signature}).is_success
    refused = httpx.post(push_url, content=ORDER_PUSH, headers={"Authorization": "0" * 64})
    assert refused.status_code == 401

    for job in ("orderflow-webhook", "orderflow-erp-sync"):
        wait_for(lambda job=job: api.has(f'up{{job="{job}"}} == 1'), f"{job} scraped")
        wait_for(
            lambda job=job: api.has(f'orderflow_build_info{{job="{job}"}}'), f"{job}'s build info"
        )
    wait_for(
        lambda: api.has(
            'orderflow_webhook_pushes_total{job="orderflow-webhook", outcome="accepted"} == 1'
        ),
        "the accepted push in Prometheus",
    )
    wait_for(
        lambda: api.has(
            'orderflow_webhook_verification_failures_total{job="orderflow-webhook"} == 1'
        ),
        "the refused push in Prometheus",
    )
    wait_for(
        lambda: api.has('orderflow_webhook_ack_seconds_count{job="orderflow-webhook"} == 1'),
        "the push's acknowledgement time in Prometheus",
    )
    wait_for(
        lambda: api.has(
            'orderflow_consumer_lag_seconds{job="orderflow-erp-sync", consumer="erp-sync"}'
        ),
        "erp-sync's lag in Prometheus",
    )

    # The rules load and evaluate against real series without error.
    def every_rule_evaluated() -> bool:
        rules = [r for g in api.get("/api/v1/rules")["groups"] for r in g["rules"]]
        return bool(rules) and all(not r["lastEvaluation"].startswith("0001") for r in rules)

    wait_for(every_rule_evaluated, "every rule evaluated once")
    groups = api.get("/api/v1/rules")["groups"]
    assert {g["name"] for g in groups} >= {"orderflow-recording", "orderflow-consumers"}
    broken = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"]]
    assert [b for b in broken if b[1]] == []
    wait_for(
        lambda: api.has('orderflow:webhook_pushes:rate5m{outcome="accepted"}'),
        "a recording rule's series",
    )
    # A healthy pair of processes raises no orderflow alert.
    assert api.query('ALERTS{alertstate="firing"}') == []

    # Every dashboard query is PromQL Prometheus accepts (Grafana's variables filled in).
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            query = target["expr"].replace("$__rate_interval", "1m").replace("$job", ".*")
            answer = api.answer("/api/v1/query", query=query)
            assert answer["status"] == "success", f"panel {panel['title']!r}: {answer}"

    # promtool's linter accepts what each process serves.
    for process in (webhook, consumer):
        exposition = httpx.get(process.metrics_url, timeout=5).content
        assert b"orderflow_build_info" in exposition
        linted = subprocess.run(
            [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60
        )
        assert linted.returncode == 0, (
            f"{process.name}: {linted.stdout.decode()}{linted.stderr.decode()}"
        )
