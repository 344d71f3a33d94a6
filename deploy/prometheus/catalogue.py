"""docs/metrics.md, the catalogue of every metric orderflow exposes, rendered from the one module
that declares them (``orderflow.metrics``).

    .venv/bin/python deploy/prometheus/catalogue.py           # rewrite docs/metrics.md
    .venv/bin/python deploy/prometheus/catalogue.py --check   # exit 1 if it is out of date

``catalogue()`` is also what the tests check the alert rules and the Grafana dashboard against:
a name there that no declared metric exposes is a typo or a metric that was renamed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from orderflow.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "metrics.md"
REGENERATE = ".venv/bin/python deploy/prometheus/catalogue.py"

# The series names one declared metric puts on /metrics, by type (prometheus_client's text
# format; `_created` is the time a labelled child was first used).
_SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}
# The name a person searches for: what a query of the metric's main series uses.
_MAIN_SUFFIX = {"counter": "_total", "info": "_info"}


@dataclass(frozen=True)
class CatalogueEntry:
    """One declared metric: its family name as prometheus_client reports it (a counter's
    without ``_total``), its type, its label names and its help text."""

    family: str
    type: str
    labels: tuple[str, ...]
    help: str

    @property
    def name(self) -> str:
        """The name queries use (``orderflow_dead_letters_total``, ``orderflow_build_info``)."""
        return self.family + _MAIN_SUFFIX.get(self.type, "")

    @property
    def series(self) -> tuple[str, ...]:
        """Every series name this metric can expose."""
        return tuple(self.family + suffix for suffix in _SERIES_SUFFIXES[self.type])


def catalogue(metrics: Metrics | None = None) -> list[CatalogueEntry]:
    """Every metric ``Metrics`` declares, in declaration order.

    Raises ``RuntimeError`` if its registry holds a collector that is not one of its
    attributes: the catalogue would silently miss it."""
    metrics = metrics if metrics is not None else Metrics(CollectorRegistry())
    # Labels a series already carries beyond the declared ones: an Info's keys.
    sampled: dict[str, list[str]] = {}
    for family in metrics.registry.collect():
        keys = sampled.setdefault(family.name, [])
        for sample in family.samples:
            keys += [k for k in sample.labels if k != "le" and k not in keys]
    entries = []
    for declared in vars(metrics).values():
        if isinstance(declared, MetricWrapperBase):
            (family,) = declared.describe()
            # prometheus_client has no public accessor for a metric's label names.
            labels = list(declared._labelnames)
            labels += [k for k in sampled.get(family.name, []) if k not in labels]
            entries.append(
                CatalogueEntry(family.name, family.type, tuple(labels), family.documentation)
            )
    unlisted = set(sampled) - {entry.family for entry in entries}
    if unlisted:
        raise RuntimeError(
            f"metrics registered but not attributes of Metrics: {sorted(unlisted)}; "
            "declare every metric as an attribute so the catalogue lists it"
        )
    return entries


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(entries: list[CatalogueEntry]) -> str:
    """The Markdown of docs/metrics.md."""
    lines = [
        "# Metrics catalogue",
        "",
        "<!-- Generated from orderflow/metrics.py by deploy/prometheus/catalogue.py;",
        f"     do not edit by hand. Regenerate with: {REGENERATE} -->",
        "",
        "Every metric an orderflow process serves on `/metrics`, as declared in",
        "`orderflow/metrics.py`. Every process registers all of them; a metric with labels shows",
        "series only once the process has recorded something for those labels (the webhook has",
        "no consumer lag). Labels are bounded: topic, consumer, API path, outcome and shop id",
        "are labels, order ids never are. Prometheus adds `job` and `instance` when it scrapes.",
        "",
        "The alerts in `deploy/prometheus/` and the dashboard in `deploy/grafana/` use only these",
        "metrics (a unit test checks it), and `docs/operations.md` says what each alert means.",
        "",
        "| Metric | Type | Labels | Meaning |",
        "|---|---|---|---|",
    ]
    for entry in entries:
        labels = ", ".join(f"`{label}`" for label in entry.labels) or "—"
        lines.append(f"| `{entry.name}` | {entry.type} | {labels} | {_cell(entry.help)} |")
    lines += [
        "",
        "Besides the name in the table, a counter `X_total` also serves `X_created` (when each",
        "labelled series was first used), and a histogram `X` serves `X_bucket` (with the",
        "bucket bound `le`), `X_sum`, `X_count` and `X_created`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if docs/metrics.md differs from what would be written",
    )
    args = parser.parse_args(argv)
    text = render(catalogue())
    if args.check:
        if not CATALOGUE.exists() or CATALOGUE.read_text() != text:
            sys.stderr.write(f"{CATALOGUE} is out of date; regenerate it with: {REGENERATE}\n")
            return 1
        return 0
    CATALOGUE.parent.mkdir(parents=True, exist_ok=True)
    CATALOGUE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
