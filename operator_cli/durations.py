"""Durations and moments as operators type them: 7d, 12h, 90m, or a date."""

import argparse
import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^(\d+)([wdhm])$")
_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 7d, 12h or 90m")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_since(text: str, now: datetime) -> datetime:
    """7d (before `now`), or a UTC date or moment: 2026-11-20, 2026-11-20T18:00."""
    try:
        return now - parse_duration(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (7d, 12h) nor a date (2026-11-20)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
