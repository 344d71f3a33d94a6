"""`make chaos`: ``python -m chaos [NAME ...]`` runs the fault scenarios (all by default),
prints each one's figures and PASS/FAIL, a summary table, and writes ``chaos/results.json``.
Exit status 1 when a scenario failed."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from benchmarks.stack import running_stack, sigterm_as_interrupt
from chaos.results import RESULTS, ScenarioResult, line, table, write
from chaos.scenarios import SCENARIOS, Scenario
from chaos.world import FULL, TRIMMED, Scale, SetupFailed
from tests.integration.stack import Stack

SETUP_RETRY_SECONDS = 30.0


def say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - this is the command's output


def run_one(scenario: Scenario, stack: Stack, workdir: Path, scale: Scale) -> ScenarioResult:
    """Run ``scenario``; a scenario that cannot run to its end is a failed result, with the
    reason, and the remaining scenarios still run. One whose world could not even be built
    (the shared stack busy or away for a moment) is tried once more, in a new directory."""
    started = time.monotonic()
    try:
        try:
            return scenario.run(stack, workdir, scale)
        except SetupFailed as exc:
            say(f"  could not set up ({exc}); trying once more in {SETUP_RETRY_SECONDS:.0f}s")
            time.sleep(SETUP_RETRY_SECONDS)
            return scenario.run(stack, workdir.with_name(workdir.name + "-again"), scale)
    except Exception as exc:  # noqa: BLE001 - reported as the scenario's failure, not lost
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "error.txt").write_text(traceback.format_exc())
        return ScenarioResult(
            name=scenario.name,
            orders=0,
            pushes=0,
            faults=0,
            verdict=None,
            seconds=time.monotonic() - started,
            error=f"{type(exc).__name__}: {exc} (traceback in {workdir / 'error.txt'})",
            details={"workdir": str(workdir)},
        )


def describe(result: ScenarioResult) -> list[str]:
    """The lines under a scenario's summary: what went wrong, and where to look."""
    out = []
    details = result.details
    if result.error:
        out.append(f"  error: {result.error}")
    if details.get("converged") is False:
        out.append(f"  did not settle within {details.get('converge_seconds')}s")
    if details.get("crashes"):
        out.append(f"  processes that ended on their own (restarted): {details['crashes']}")
    if details.get("unclean_exits"):
        out.append(f"  SIGTERM did not end cleanly: {details['unclean_exits']}")
    v = result.verdict
    if v is not None:
        for kind, examples in v.examples.items():
            out.append(f"  {kind}: {examples}")
        if v.undelivered_by_kind:
            out.append(f"  undelivered: {v.undelivered_by_kind}")
    shown = {k: val for k, val in details.items() if k not in ("crashes", "unclean_exits")}
    out.append(f"  details: {shown}")
    return out


def run(
    names: Sequence[str], stack: Stack, workdir: Path, scale: Scale = FULL
) -> list[ScenarioResult]:
    """Run the named scenarios in order under ``workdir`` (a directory each); the logs of a
    passed scenario are removed, those of a failed one, or of one where a process ended on
    its own, kept."""
    results = []
    for name in names:
        scenario = SCENARIOS[name]
        say(f"\n== {name}: {scenario.injects}")
        directory = workdir / name
        result = run_one(scenario, stack, directory, scale)
        results.append(result)
        say(line(result))
        for text in describe(result):
            say(text)
        if result.passed and not result.details.get("crashes"):
            shutil.rmtree(directory, ignore_errors=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"scenarios to run (default: all): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--trimmed", action="store_true", help="the small traffic `make test` runs")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help=f"where to write (default {RESULTS})"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in SCENARIOS]
    if unknown:
        parser.error(f"no scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    names = args.names or list(SCENARIOS)
    # kafka-python logs every refused connection while a broker is down; the scenarios
    # count what matters.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    workdir = Path(tempfile.mkdtemp(prefix="orderflow-chaos-"))
    scale = TRIMMED if args.trimmed else FULL
    say(f"chaos: {', '.join(names)}; {scale}; logs under {workdir}")
    began = time.monotonic()
    with sigterm_as_interrupt(), running_stack() as stack:
        results = run(names, stack, workdir, scale)
    write(results, args.results)
    say(f"\n{table(results)}\n")
    failed = [r.name for r in results if not r.passed]
    if not any(workdir.iterdir()):
        workdir.rmdir()
    say(
        f"{len(results) - len(failed)} of {len(results)} scenarios passed in "
        f"{time.monotonic() - began:.0f}s; results in {args.results}"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
        + (f"; logs kept under {workdir}" if workdir.exists() else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
