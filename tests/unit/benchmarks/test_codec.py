"""The codec benchmark's figures: the codec against JSON on the same record."""

from __future__ import annotations

import pytest

from benchmarks.codec import codec_figures


def test_each_record_type_gives_encode_decode_and_size_against_json() -> None:
    figures = codec_figures(
        "codec_order_notice",
        {"codec": 100_000.0, "before": 80_000.0, "json": 400_000.0},
        {"codec": 50_000.0, "before": 40_000.0, "json": 100_000.0},
        112,
        269,
    )
    assert [(f["name"], f["unit"], f["value"], f["baseline"]) for f in figures] == [
        ("codec_order_notice_encode_records_per_s", "records/s", 100_000.0, 400_000.0),
        ("codec_order_notice_decode_records_per_s", "records/s", 50_000.0, 100_000.0),
        ("codec_order_notice_bytes", "bytes", 112, 269),
    ]
    assert [f["ratio"] for f in figures] == pytest.approx([0.25, 0.5, 112 / 269])
    assert all(f["target"] is None and f["met"] is None for f in figures)
