"""`make bench`: run every benchmark and print ratios against in-run baselines."""

from __future__ import annotations

from benchmarks import codec


def main() -> None:
    codec.run()


if __name__ == "__main__":
    main()
