"""The simulator's virtual clock: AWS latencies and Step Functions waits run on it."""

import threading
from datetime import UTC, datetime, timedelta

DEFAULT_START = datetime(2026, 11, 25, tzinfo=UTC)


class VirtualClock:
    """Time that moves only when someone waits.

    Executions run one at a time, so a wait simply moves the clock forward. Every wait
    goes through `sleep` so that a later scheduler for concurrent executions can make a
    waiter block until the slowest runner catches up, without touching the callers.
    """

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError("the virtual start time must be timezone-aware")
        self._start = start.astimezone(UTC)
        self._now = self._start
        self._lock = threading.Lock()

    @property
    def start(self) -> datetime:
        return self._start

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def elapsed(self) -> float:
        """Virtual seconds since the start."""
        return (self.now() - self._start).total_seconds()

    def sleep(self, seconds: float) -> None:
        """A waiter (a Wait state, a Retry interval, an SDK backoff) lets time pass."""
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"time cannot go back ({seconds} s)")
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def advance_to(self, moment: datetime) -> None:
        """Move to `moment` if it lies ahead; a moment in the past changes nothing."""
        with self._lock:
            if moment > self._now:
                self._now = moment
