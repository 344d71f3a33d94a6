"""The ingest processes' parts: the shared ones, plus the notice writer."""

from __future__ import annotations

from orderflow.wiring import ProcessParts
from producers.notices import NoticeWriter, RecordQueue
from schemas.codec import AvroCodec
from schemas.models import OrderNotice


class Ingest(ProcessParts):
    def notice_writer(self, queue: RecordQueue | None = None) -> NoticeWriter:
        """Notices written with this process's producer, or with ``queue``."""
        codec = AvroCodec(OrderNotice, self.settings.topic_notices, self.registry)
        # Register the schema now: a registry outage shows at start, not on the first push.
        _ = codec.schema_id
        return NoticeWriter(queue or self.producer, codec, self.metrics)
