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
