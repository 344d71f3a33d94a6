"""``--since`` / ``--until`` values (pure)."""

from __future__ import annotations

import click
import pytest

from producers.backfill import parse_when

NOW = 1_764_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Day and week ages start at midnight UTC, so a re-run the same day resumes.
        ("90d", 1_756_166_400),
        ("12h", 1_764_000_000 - 12 * 3600),
        ("2w", 1_762_732_800),
        ("1700000000", 1_700_000_000),
        ("2026-08-01", 1_785_542_400),
        ("2026-08-01T07:00:00+07:00", 1_785_542_400),
    ],
)
def test_parse_when(text: str, expected: int) -> None:
    assert parse_when(text, NOW) == expected


def test_nonsense_is_a_clear_error() -> None:
    with pytest.raises(click.BadParameter, match="not a date"):
        parse_when("last tuesday", NOW)
