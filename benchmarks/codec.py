"""The Avro codec against JSON on the same records, encode and decode, measured in the same
run (issue 9: "codec: encode and decode records/s against JSON on the same data").

The figures: records/s of ``schemas.codec.AvroCodec`` (Confluent framing + Avro binary)
against pydantic's JSON (``model_dump_json`` / ``model_validate_json``: the same model
validated on the way in, so both sides deliver the same ``Record``), and the bytes each
writes. The table also shows the codec as it was before (``benchmarks/baseline_codec.py``)
and checks that both still write the same bytes.

Ratios above 1 mean the codec handles more records per second than JSON (or, for bytes, writes
more). Rates are the best of several rounds, to keep other load on the machine out of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from benchmarks.baseline_codec import BaselineCodec
from benchmarks.report import Figure, figure, print_table
from schemas.codec import AvroCodec
from schemas.models import OrderEvent, OrderLine, OrderNotice, Package, PackageLine, Record
from schemas.registry import InMemorySchemaRegistry

ROUNDS = 7
PER_ROUND = 2000


def sample() -> OrderEvent:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    lines = tuple(
        OrderLine(
            item_id=23620853561 + i,
            model_id=221404189791 + i,
            item_name=f"Item {i}",
            model_sku=f"SKU-{i}",
            quantity=1 + i,
            original_price=Decimal("300000"),
            discounted_price=Decimal("48000.50"),
        )
        for i in range(5)
    )
    return OrderEvent(
        event_id="b5f0d7f2-4d3c-5d1e-9a57-0c5b9f1d2e3a",
        shop_id=727720655,
        order_sn="2404098R48U37H",
        region="VN",
        currency="VND",
        status="READY_TO_SHIP",
        create_time=now,
        update_time=now,
        pay_time=now,
        total_amount=Decimal("32119"),
        items=lines,
        packages=(
            Package(
                package_number="OFG166300791210964",
                items=tuple(
                    PackageLine(item_id=x.item_id, model_id=x.model_id, quantity=x.quantity)
                    for x in lines
                ),
            ),
        ),
        source="push",
        emitted_at=now,
    )


def notice() -> OrderNotice:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    return OrderNotice(
        event_id="b5f0d7f2-4d3c-5d1e-9a57-0c5b9f1d2e3a",
        shop_id=727720655,
        order_sn="2404098R48U37H",
        status="READY_TO_SHIP",
        update_time=now,
        source="push",
        push_code=3,
        msg_id="a1b2c3",
        received_at=now,
    )


def best_rates(steps: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Records per second of each step, best round of several. The steps take turns within
    every round, so a burst of other load on the machine cannot favour one of them."""
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(ROUNDS):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(PER_ROUND):
                step()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: PER_ROUND / seconds for name, seconds in best.items()}


def codec_figures(
    prefix: str,
    encode: dict[str, float],
    decode: dict[str, float],
    avro_bytes: int,
    json_bytes: int,
) -> list[Figure]:
    """The figures of one record type: the codec's rates and size, JSON's as the baseline."""
    return [
        figure(f"{prefix}_encode_records_per_s", "records/s", encode["codec"], encode["json"]),
        figure(f"{prefix}_decode_records_per_s", "records/s", decode["codec"], decode["json"]),
        figure(f"{prefix}_bytes", "bytes", avro_bytes, json_bytes),
    ]


def compare(prefix: str, title: str, record: Record) -> list[Figure]:
    model = type(record)
    codec = AvroCodec(model, "bench", InMemorySchemaRegistry())
    before = BaselineCodec(model, "bench", InMemorySchemaRegistry())
    avro_bytes = codec.encode(record)
    if avro_bytes != before.encode(record):
        raise AssertionError("the codec no longer writes the bytes it wrote before")
    json_bytes = record.model_dump_json().encode()
    if codec.decode(avro_bytes) != record or model.model_validate_json(json_bytes) != record:
        raise AssertionError(f"{title}: a round trip changed the record")

    encode = best_rates(
        {
            "codec": lambda: codec.encode(record),
            "before": lambda: before.encode(record),
            "json": lambda: record.model_dump_json(),
        }
    )
    decode = best_rates(
        {
            "codec": lambda: codec.decode(avro_bytes),
            "before": lambda: before.decode(avro_bytes),
            "json": lambda: model.model_validate_json(json_bytes),
        }
    )
    print(f"{title}: records/s, best of {ROUNDS} rounds of {PER_ROUND}")
    print(
        f"  {'':7} {'codec':>9} {'before':>9} {'json':>9}   {'codec/before':>12} {'codec/json':>10}"
    )
    for step, rates in (("encode", encode), ("decode", decode)):
        print(
            f"  {step:7} {rates['codec']:9,.0f} {rates['before']:9,.0f} {rates['json']:9,.0f}   "
            f"{rates['codec'] / rates['before']:11.2f}x {rates['codec'] / rates['json']:9.2f}x"
        )
    print(
        f"  {'size':7} {len(avro_bytes):7d} B {len(avro_bytes):7d} B {len(json_bytes):7d} B   "
        f"{'':>12} {len(json_bytes) / len(avro_bytes):9.2f}x smaller than json"
    )
    return codec_figures(prefix, encode, decode, len(avro_bytes), len(json_bytes))


def run() -> list[Figure]:
    figures = compare("codec_order_event", "OrderEvent with 5 lines", sample())
    figures += compare("codec_order_notice", "OrderNotice", notice())
    print_table(
        "codec: AvroCodec (Confluent framing + Avro) against pydantic JSON, same records",
        figures,
        [
            "baseline: model_dump_json / model_validate_json of the same record; "
            "ratio = value / baseline (for bytes, below 1 means smaller than JSON)"
        ],
    )
    return figures
