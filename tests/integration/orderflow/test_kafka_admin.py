"""The adapter's admin client against the real broker."""

from __future__ import annotations

import time

from orderflow.kafka import Admin, TopicSpec
from orderflow.settings import Settings


def test_deleted_topics_are_gone_and_deleting_a_missing_one_is_not_an_error(
    settings: Settings,
) -> None:
    admin = Admin(settings)
    try:
        name = f"{settings.topic_notices}.to-delete"
        admin.create_topics([TopicSpec(name, 2, 1)])
        assert name in admin.list_topics()
        admin.delete_topics([name, f"{name}.never-created"])
        deadline = time.monotonic() + 30
        while name in admin.list_topics():
            assert time.monotonic() < deadline, f"{name} still listed 30 s after deletion"
            time.sleep(0.2)
    finally:
        admin.close()
