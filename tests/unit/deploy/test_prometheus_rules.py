"""The Prometheus rules in deploy/prometheus/: promtool accepts them and passes their unit
tests; every alert has a severity, a summary, a description and a runbook entry in
docs/operations.md; and the promtool tests make every alert (at each of its severities) fire
in one case and stay silent in another."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULE_FILES = [PROMETHEUS_DIR / "recording-rules.yml", PROMETHEUS_DIR / "alert-rules.yml"]
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
OPERATIONS = ROOT / "docs" / "operations.md"
SEVERITIES = {"critical", "warning"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)


def alerting_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS_DIR / "alert-rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of ``markdown``."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.MULTILINE):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return anchors


def test_promtool_accepts_the_rule_files(promtool: str) -> None:
    checked = run(promtool, "check", "rules", "--lint=all", "--lint-fatal", *map(str, RULE_FILES))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_promtool_unit_tests_pass(promtool: str) -> None:
    assert TEST_FILES
    tested = run(promtool, "test", "rules", *map(str, TEST_FILES))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_tests_fail_when_an_alert_does_not_behave(promtool: str, tmp_path: Path) -> None:
    """The unit tests can fail: with the lag threshold moved they do."""
    for path in RULE_FILES:
        text = path.read_text().replace(
            "orderflow:consumer_lag_seconds:max > 300", "orderflow:consumer_lag_seconds:max > 900"
        )
        (tmp_path / path.name).write_text(text)
    (tmp_path / "tests").mkdir()
    shutil.copy(PROMETHEUS_DIR / "tests" / "consumers.yml", tmp_path / "tests")
    tested = run(promtool, "test", "rules", str(tmp_path / "tests" / "consumers.yml"))
    assert tested.returncode != 0
    assert "OrderflowConsumerLagHigh" in tested.stdout + tested.stderr


def test_every_alert_says_how_bad_it_is_what_happened_and_where_its_runbook_is() -> None:
    anchors = github_anchors(OPERATIONS.read_text())
    rules = alerting_rules()
    assert rules
    for rule in rules:
        name = rule["alert"]
        assert name.startswith("Orderflow"), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        url = annotations["runbook_url"]
        assert url == f"docs/operations.md#{name.lower()}", f"{name}: runbook_url {url}"
        assert name.lower() in anchors, f"docs/operations.md has no section for {name}"


def test_the_runbook_has_no_entry_for_an_alert_that_does_not_exist() -> None:
    names = {rule["alert"] for rule in alerting_rules()}
    sections = set(re.findall(r"^### (Orderflow\w+)$", OPERATIONS.read_text(), re.MULTILINE))
    assert sections == names


def test_every_alert_fires_in_a_promtool_test_and_stays_silent_in_another() -> None:
    firing: dict[str, set[str]] = defaultdict(set)  # alert -> severities seen firing
    silent: set[str] = set()
    for path in TEST_FILES:
        suite = yaml.safe_load(path.read_text())
        assert suite["rule_files"] == ["../recording-rules.yml", "../alert-rules.yml"], path
        for test in suite["tests"]:
            for case in test.get("alert_rule_test", []):
                name = case["alertname"]
                if case.get("exp_alerts"):
                    firing[name] |= {
                        alert["exp_labels"]["severity"] for alert in case["exp_alerts"]
                    }
                else:
                    silent.add(name)
    severities: dict[str, set[str]] = defaultdict(set)
    for rule in alerting_rules():
        severities[rule["alert"]].add(rule["labels"]["severity"])
    # A test of an alert that does not exist passes "silent" for nothing.
    assert set(firing) | silent <= set(severities), "promtool tests name unknown alerts"
    for name, wanted in severities.items():
        assert firing[name] == wanted, f"{name} fires at {firing[name]} in tests, not {wanted}"
        assert name in silent, f"no promtool test shows {name} staying silent"


def test_the_anchor_rule_matches_github() -> None:
    assert github_anchors("### OrderflowDeadLetters\n## Setting up monitoring\n") == {
        "orderflowdeadletters",
        "setting-up-monitoring",
    }
