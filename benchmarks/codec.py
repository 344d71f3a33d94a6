"""The Avro codec against a JSON baseline, on the same OrderEvent, in the same process.

Ratios above 1 mean the codec is faster (or smaller) than pydantic's JSON for the same record.
Times are the best of several rounds, to keep other load on the machine out of the figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from schemas.codec import AvroCodec
from schemas.models import OrderEvent, OrderLine, Package, PackageLine
from schemas.registry import InMemorySchemaRegistry

ROUNDS = 5
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


def best_seconds(step: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(PER_ROUND):
            step()
        best = min(best, time.perf_counter() - start)
    return best / PER_ROUND


def run() -> None:
    event = sample()
    codec = AvroCodec(OrderEvent, "bench", InMemorySchemaRegistry())
    avro_bytes = codec.encode(event)
    json_bytes = event.model_dump_json().encode()

    json_encode = best_seconds(lambda: event.model_dump_json())
    avro_encode = best_seconds(lambda: codec.encode(event))
    json_decode = best_seconds(lambda: OrderEvent.model_validate_json(json_bytes))
    avro_decode = best_seconds(lambda: codec.decode(avro_bytes))

    print("codec: OrderEvent with 5 lines; baseline = pydantic JSON, same record, same run")
    print(
        f"  encode  avro {avro_encode * 1e6:8.1f} us  json {json_encode * 1e6:8.1f} us  "
        f"ratio json/avro {json_encode / avro_encode:5.2f}"
    )
    print(
        f"  decode  avro {avro_decode * 1e6:8.1f} us  json {json_decode * 1e6:8.1f} us  "
        f"ratio json/avro {json_decode / avro_decode:5.2f}"
    )
    print(
        f"  size    avro {len(avro_bytes):6d} B    json {len(json_bytes):6d} B    "
        f"ratio json/avro {len(json_bytes) / len(avro_bytes):5.2f}"
    )
