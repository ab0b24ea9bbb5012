"""--since and --timeout as operators type them."""

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from operator_cli.durations import parse_duration, parse_since

NOW = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "since"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("36h", NOW - timedelta(hours=36)),
        ("90m", NOW - timedelta(minutes=90)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11-20T18:30", datetime(2026, 11, 20, 18, 30, tzinfo=UTC)),
        ("2026-11-20T18:30+01:00", datetime(2026, 11, 20, 17, 30, tzinfo=UTC)),
    ],
)
def test_since_is_a_duration_back_from_now_or_a_utc_moment(text: str, since: datetime) -> None:
    assert parse_since(text, NOW) == since


@pytest.mark.parametrize("text", ["0d", "7", "7 days", "yesterday", "-1d"])
def test_what_is_neither_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_since(text, NOW)


def test_a_timeout_is_a_duration() -> None:
    assert parse_duration("48h") == timedelta(hours=48)
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
        parse_duration("forever")
