"""Where the handlers read the time and let it pass, so that a simulator can run them on a
virtual clock."""

import time
from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
