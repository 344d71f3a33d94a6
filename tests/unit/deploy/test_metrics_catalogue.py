"""The metrics catalogue (docs/metrics.md) is what orderflow/metrics.py declares; the alert
rules, their promtool tests and the Grafana dashboard use only metrics it lists; and the
exposition of every metric passes ``promtool check metrics``."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from deploy.prometheus.catalogue import CATALOGUE, REGENERATE, catalogue, render
from orderflow.metrics import Metrics

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "orderflow.json"

# An orderflow metric name inside PromQL (not a recording rule's `orderflow:...` name).
METRIC_NAME = re.compile(r"(?<![\w:])orderflow_\w+")
RECORDED_NAME = re.compile(r"(?<![\w:])orderflow:[\w:]+")


def catalogue_series() -> set[str]:
    return {series for entry in catalogue() for series in entry.series}


def rule_and_test_files() -> list[Path]:
    return sorted(PROMETHEUS_DIR.glob("*.yml")) + sorted(PROMETHEUS_DIR.glob("tests/*.yml"))


def dashboard_queries() -> list[str]:
    """Every PromQL query of the dashboard: panel targets and template variables."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["definition"])
    return queries


# -- the catalogue ----------------------------------------------------------------------------


def test_the_checked_in_catalogue_is_generated_from_the_metrics_module() -> None:
    expected = render(catalogue())
    actual = CATALOGUE.read_text() if CATALOGUE.exists() else ""
    assert actual == expected, (
        f"docs/metrics.md is not what orderflow/metrics.py declares; regenerate it with: "
        f"{REGENERATE}"
    )


def test_the_catalogue_lists_every_registered_metric_with_type_labels_and_help() -> None:
    metrics = Metrics(CollectorRegistry())
    entries = {entry.name: entry for entry in catalogue(metrics)}

    assert len(entries) == len(list(metrics.registry.collect()))
    dead_letters = entries["orderflow_dead_letters_total"]
    assert (dead_letters.type, dead_letters.labels) == ("counter", ("consumer",))
    assert dead_letters.help == "Records sent to a dead-letter topic, by consumer."
    assert entries["orderflow_build_info"].labels == ("version",)
    assert entries["orderflow_webhook_ack_seconds"].series == (
        "orderflow_webhook_ack_seconds_bucket",
        "orderflow_webhook_ack_seconds_count",
        "orderflow_webhook_ack_seconds_sum",
        "orderflow_webhook_ack_seconds_created",
    )
    for entry in entries.values():
        assert entry.help, f"{entry.name} has no help text"
        assert f"| `{entry.name}` |" in CATALOGUE.read_text()


def test_a_metric_registered_outside_the_metrics_object_is_refused() -> None:
    metrics = Metrics(CollectorRegistry())
    Gauge("orderflow_stray", "Declared elsewhere.", registry=metrics.registry)
    with pytest.raises(RuntimeError, match="orderflow_stray"):
        catalogue(metrics)


# -- names used by the rules and the dashboard ------------------------------------------------


def test_the_rules_and_their_tests_use_only_catalogue_metrics() -> None:
    known = catalogue_series()
    for path in rule_and_test_files():
        used = set(METRIC_NAME.findall(path.read_text()))
        assert used, f"{path.name} uses no orderflow metric"
        unknown = used - known
        assert not unknown, (
            f"{path.relative_to(ROOT)} uses metrics not in docs/metrics.md: {unknown}"
        )


def test_the_dashboard_uses_only_catalogue_metrics() -> None:
    known = catalogue_series()
    used = {name for query in dashboard_queries() for name in METRIC_NAME.findall(query)}
    assert not used - known, f"the dashboard uses metrics not in docs/metrics.md: {used - known}"
    # Every part of the flow is on it.
    for name in (
        "orderflow_webhook_pushes_total",
        "orderflow_webhook_ack_seconds_bucket",
        "orderflow_notices_produced_total",
        "orderflow_enricher_events_total",
        "orderflow_records_consumed_total",
        "orderflow_consumer_lag_seconds",
        "orderflow_dead_letters_total",
        "orderflow_consumer_breaker_open",
        "orderflow_consumer_parked_records",
        "orderflow_auto_cancel_decisions_total",
        "orderflow_auto_cancel_budget_remaining",
        "orderflow_shopee_requests_total",
    ):
        assert name in used, f"the dashboard does not show {name}"


def test_recorded_series_used_by_alerts_and_tests_are_recorded() -> None:
    recorded = set(
        re.findall(r"record: (\S+)", (PROMETHEUS_DIR / "recording-rules.yml").read_text())
    )
    for path in rule_and_test_files():
        used = set(RECORDED_NAME.findall(path.read_text()))
        assert not used - recorded, f"{path.name} reads series no rule records: {used - recorded}"
    used = {name for query in dashboard_queries() for name in RECORDED_NAME.findall(query)}
    assert not used - recorded


def test_the_pattern_finds_names_in_promql() -> None:
    query = (
        "histogram_quantile(0.99, sum by (le) (rate(orderflow_webhook_ack_seconds_bucket[5m])))"
        " / orderflow:webhook_pushes:rate5m"
    )
    assert METRIC_NAME.findall(query) == ["orderflow_webhook_ack_seconds_bucket"]
    assert RECORDED_NAME.findall(query) == ["orderflow:webhook_pushes:rate5m"]


# -- the dashboard's shape --------------------------------------------------------------------


def test_the_dashboard_is_importable_grafana_json() -> None:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']} is wider than the dashboard"
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"] and panel.get("description"), panel["title"]
            for target in panel["targets"]:
                assert 'job=~"$job"' in target["expr"], f"{panel['title']}: no $job filter"


# -- the exposition ---------------------------------------------------------------------------


def exposition_with_every_metric() -> bytes:
    """The /metrics text of a process in which every declared metric has a sample."""
    metrics = Metrics(CollectorRegistry())
    for declared in vars(metrics).values():
        if not isinstance(declared, MetricWrapperBase):
            continue
        entry = next(e for e in catalogue() if e.family == declared.describe()[0].name)
        if entry.type == "info":
            continue  # set when Metrics is built
        child: Any = declared.labels(*["1"] * len(entry.labels)) if entry.labels else declared
        record = {"counter": "inc", "gauge": "set", "histogram": "observe"}[entry.type]
        getattr(child, record)(1)
    return generate_latest(metrics.registry)


def test_the_exposition_of_every_metric_passes_promtool_check_metrics(promtool: str) -> None:
    text = exposition_with_every_metric()
    for entry in catalogue():
        assert entry.name.encode() in text
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
