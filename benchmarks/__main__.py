"""`make bench`: run every benchmark and print ratios against in-run baselines."""

from __future__ import annotations

import logging

from benchmarks import codec, consumers, enricher, webhook
from benchmarks.report import Figure
from benchmarks.stack import running_stack


def main() -> list[Figure]:
    """Print every table; return the figures of the benchmarks that report them."""
    # kafka-python warns whenever its network loop stalls; under load that is every few
    # seconds, and the figures already carry the cost.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    codec.run()
    figures: list[Figure] = []
    with running_stack() as stack:
        for benchmark in (webhook, enricher, consumers):
            print()
            figures += benchmark.run(stack)
    return figures


if __name__ == "__main__":
    main()
