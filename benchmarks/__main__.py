"""`make bench`: run the benchmarks, print every figure with its same-run baseline, ratio and
target, and write them all to ``bench/results.json``.

    python -m benchmarks [NAME ...] [--output PATH] [--strict]

NAME is any of codec, webhook, enricher, consumers, e2e (default: all, in that order). The
results file always describes exactly one run: a subset writes only its own figures (and
names the benchmarks it ran in ``machine.benchmarks``), replacing what was there; pass
``--output`` to keep a full run's file. A benchmark that fails is reported and the others
still run. Exit status: 1 when a benchmark failed, or with ``--strict`` when a target was not
met; otherwise 0 (timings on a shared machine are noisy, so a missed target is reported
loudly, not turned into a failed build).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.machine import ROOT, describe
from benchmarks.report import Figure, print_summary, unmet, write_results
from benchmarks.stack import running_stack, sigterm_as_interrupt
from tests.integration.stack import Stack

RESULTS = ROOT / "bench" / "results.json"


def _codec(stack: Stack | None) -> list[Figure]:
    from benchmarks import codec

    return codec.run()


def _webhook(stack: Stack | None) -> list[Figure]:
    from benchmarks import webhook

    return webhook.run(stack)


def _enricher(stack: Stack | None) -> list[Figure]:
    from benchmarks import enricher

    return enricher.run(stack)


def _consumers(stack: Stack | None) -> list[Figure]:
    from benchmarks import consumers

    return consumers.run(stack)


def _e2e(stack: Stack | None) -> list[Figure]:
    from benchmarks import e2e

    return e2e.run(stack)


@dataclass(frozen=True)
class Benchmark:
    name: str
    # Imported when run, so that a subset does not load (or fail on) the others.
    run: Callable[[Stack | None], list[Figure]]
    needs_stack: bool


BENCHMARKS = (
    Benchmark("codec", _codec, needs_stack=False),
    Benchmark("webhook", _webhook, needs_stack=True),
    Benchmark("enricher", _enricher, needs_stack=True),
    Benchmark("consumers", _consumers, needs_stack=True),
    Benchmark("e2e", _e2e, needs_stack=True),
)
NAMES = tuple(b.name for b in BENCHMARKS)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run benchmarks against baselines measured in the same run.",
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(NAMES)} (all)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        metavar="PATH",
        help="where the results go (default: bench/results.json)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is not met, too"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    return args


def selected(names: Sequence[str]) -> list[Benchmark]:
    """The benchmarks named (all when none), in the fixed order, each once."""
    return [b for b in BENCHMARKS if not names or b.name in names]


def exit_status(failed: Sequence[str], figures: Sequence[Figure], *, strict: bool) -> int:
    return 1 if failed or (strict and unmet(figures)) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    # kafka-python warns whenever its network loop stalls; under load that is every few
    # seconds, and the figures already carry the cost.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    benchmarks = selected(args.names)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    figures: list[Figure] = []
    failed: list[str] = []
    postgres_url = None
    with sigterm_as_interrupt(), ExitStack() as stack_scope:
        stack: Stack | None = None
        for benchmark in benchmarks:
            if benchmark.needs_stack and stack is None:
                stack = stack_scope.enter_context(running_stack())
                postgres_url = stack.postgres_url
            print()
            try:
                figures += benchmark.run(stack)
            except Exception:  # noqa: BLE001 - reported, and the run exits 1 at the end
                traceback.print_exc()
                print(f"{benchmark.name}: FAILED (see above); its figures are missing")
                failed.append(benchmark.name)
        machine = describe(
            started=started_at,
            seconds=time.monotonic() - started,
            benchmarks=[b.name for b in benchmarks],
            failed=failed,
            postgres_url=postgres_url,
        )
    print()
    print_summary(figures, failed)
    write_results(args.output, machine, figures)
    print(f"results: {args.output}")
    return exit_status(failed, figures, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
