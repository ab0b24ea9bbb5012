"""Bounded waiting: how long to wait before the next look, and when to give up."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vss_restore.clock import iso
from vss_restore.errors import WaitTimedOut


@dataclass(frozen=True)
class WaitPolicy:
    first_seconds: int
    longest_seconds: int
    max_attempts: int
    max_seconds: int


# One policy per thing waited for; the waits grow so that a long wait costs few rounds.
POLICIES = {
    "volume_available": WaitPolicy(2, 30, 60, 3600),
    "volume_attached": WaitPolicy(2, 15, 60, 1800),
    "volume_detached": WaitPolicy(2, 15, 60, 1800),
    "inspect": WaitPolicy(5, 30, 60, 3600),
    # The disk tool runs for at most its document's timeoutSeconds (7200); a little more
    # lets the agent report the timeout itself.
    "revert": WaitPolicy(15, 300, 120, 7200 + 600),
    # A scan's time grows with the number of files.
    "check": WaitPolicy(10, 300, 120, 7200 + 600),
    "snapshot_completed": WaitPolicy(15, 600, 200, 24 * 3600),
}


@dataclass(frozen=True)
class InvocationWait:
    every_seconds: float
    at_most_seconds: float


# Operations that usually end within seconds are waited for inside the Lambda that starts
# them: one state instead of a poll loop's three a round, and late by under a second. The
# loop stays as the fallback when this wait runs out. A function's Timeout (30 s) bounds it,
# less LAST_CALL_SECONDS for the look in flight and the answer.
IN_INVOCATION = {
    # CreateVolume to available: ~1.5 s median, ~4 s p99; attach and detach: 1 to 4 s.
    "volume_available": InvocationWait(1, 20),
    "volume_attached": InvocationWait(1, 20),
    "volume_detached": InvocationWait(1, 20),
}
LAST_CALL_SECONDS = 5


def pause_in_invocation(what: str, waited: float, seconds_left: float) -> float | None:
    """The pause before the next look inside the invocation, or None: hand the wait over to
    the state machine's loop. `waited` counts from the first look, `seconds_left` is the
    invocation's remaining time."""
    wait = IN_INVOCATION[what]
    pause = wait.every_seconds
    if waited + pause > wait.at_most_seconds or seconds_left - pause < LAST_CALL_SECONDS:
        return None
    return pause


@dataclass(frozen=True)
class Progress:
    ready: bool
    attempt: int
    since: str
    wait_seconds: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "attempt": self.attempt,
            "since": self.since,
            "wait_seconds": self.wait_seconds,
        }


def next_progress(
    what: str, previous: dict[str, Any] | None, ready: bool, now: datetime
) -> Progress:
    """Count this look; raise WaitTimedOut once the wait is out of attempts or time."""
    policy = POLICIES[what]
    attempt = int((previous or {}).get("attempt", 0)) + 1
    since = str((previous or {}).get("since") or iso(now))
    if ready:
        return Progress(True, attempt, since, 0)
    waited = (now - datetime.fromisoformat(since)).total_seconds()
    if attempt >= policy.max_attempts or waited >= policy.max_seconds:
        raise WaitTimedOut(f"still waiting for {what} after {attempt} looks and {int(waited)} s")
    wait = min(policy.first_seconds * 2 ** (attempt - 1), policy.longest_seconds)
    return Progress(False, attempt, since, int(wait))


def progress_after_waiting(what: str, ready: bool, started: datetime, now: datetime) -> Progress:
    """The wait's progress as the state machine's loop takes it over: the looks inside the
    invocation count as its first, and its time counts from their start."""
    return next_progress(what, {"attempt": 0, "since": iso(started)}, ready, now)
