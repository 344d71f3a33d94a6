"""Facts about the Kafka adapter that do not need a broker."""

from __future__ import annotations

from kafka.record import util


def test_record_checksums_use_the_native_crc32c() -> None:
    # Without the crc32c package kafka-python checksums every batch in pure Python
    # (tens of microseconds per record): a dependency, not an optimisation to lose silently.
    assert util.crc32c_c is not None
