"""Bounded waiting: when to look first, how long to wait before the next look, and when to
give up."""

import hashlib
import math
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
    # A volume wait's pauses after its first look (VOLUME_FIRST_LOOK): 1 s doubling,
    # jittered by the volume (pause_after), inside the invocation and in the state machine's
    # loop alike: 1, 2, 4, 8 s within the invocation's 20 s, then on to 30 s for a volume
    # still `creating` (it can take minutes: FIELD-NOTES §7) and 15 s for an attach or a
    # detach (1 to 4 s as a rule), so a slow volume costs fewer looks than botocore's 15 s
    # waiter. The bound is the time, not the looks: about 25 min for a volume stuck in
    # `creating`, 15 min for an attach or a detach.
    "volume_available": WaitPolicy(1, 30, 260, 1500),
    "volume_attached": WaitPolicy(1, 15, 160, 900),
    "volume_detached": WaitPolicy(1, 15, 160, 900),
    "inspect": WaitPolicy(5, 30, 60, 3600),
    # The disk tool runs for at most its document's timeoutSeconds (7200); a little more
    # lets the agent report the timeout itself.
    "revert": WaitPolicy(15, 300, 120, 7200 + 600),
    # A scan's time grows with the number of files.
    "check": WaitPolicy(10, 300, 120, 7200 + 600),
    "snapshot_completed": WaitPolicy(15, 600, 200, 24 * 3600),
}

# The first look at a volume comes when the operation usually has ended, not at once:
# CreateVolume to available ~1.5 s median, ~4 s p99 (EBS CSI driver measurements);
# AttachVolume and DetachVolume 1 to 4 s (FIELD-NOTES §7). A look before that only costs a
# DescribeVolumes from the account's shared describe bucket.
VOLUME_FIRST_LOOK = {
    "volume_available": 2.0,
    "volume_attached": 3.0,
    "volume_detached": 3.0,
}

# Each jittered pause is shortened by up to this share of itself, by a hash of the volume
# and the look ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015: spread the
# looks of waits that began together). Shortened, never lengthened: the cap stays a cap.
JITTER = 0.25


def pause_after(what: str, looks: int, key: str = "") -> float:
    """The pause after the `looks`-th look: the policy's first pause doubling up to its
    longest, and with a `key` (the volume's ID) jittered, the same for the same key and look
    (a retried step, the bench and a test see the same schedule)."""
    policy = POLICIES[what]
    base = float(min(policy.first_seconds * 2 ** max(looks - 1, 0), policy.longest_seconds))
    if not key:
        return base
    return base * (1 - JITTER * _fraction(f"{key}#{looks}"))


def _fraction(text: str) -> float:
    """A number in [0, 1) that depends only on `text`."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


@dataclass(frozen=True)
class InvocationWait:
    at_most_seconds: float


# Operations that usually end within seconds are waited for inside the Lambda that starts
# them: one state instead of a poll loop's three a round, and late by under a second. The
# loop stays as the fallback when this wait runs out. A function's Timeout (30 s) bounds it,
# less LAST_CALL_SECONDS for the look in flight and the answer.
IN_INVOCATION = {what: InvocationWait(20) for what in VOLUME_FIRST_LOOK}
LAST_CALL_SECONDS = 5


def pause_in_invocation(
    what: str, looks: int, waited: float, seconds_left: float, key: str = ""
) -> float | None:
    """The pause before the next look inside the invocation, or None: hand the wait over to
    the state machine's loop. `looks` is how many looks were made (0: the pause before the
    first), `waited` counts from the call that started the operation, `seconds_left` is the
    invocation's remaining time."""
    wait = IN_INVOCATION[what]
    pause = VOLUME_FIRST_LOOK[what] if looks == 0 else pause_after(what, looks, key)
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
    what: str, previous: dict[str, Any] | None, ready: bool, now: datetime, key: str = ""
) -> Progress:
    """Count this look; raise WaitTimedOut once the wait is out of attempts or time. The
    pause is a Wait state's `SecondsPath`: whole seconds, at least 1."""
    policy = POLICIES[what]
    attempt = int((previous or {}).get("attempt", 0)) + 1
    since = str((previous or {}).get("since") or iso(now))
    if ready:
        return Progress(True, attempt, since, 0)
    waited = (now - datetime.fromisoformat(since)).total_seconds()
    if attempt >= policy.max_attempts or waited >= policy.max_seconds:
        raise WaitTimedOut(f"still waiting for {what} after {attempt} looks and {int(waited)} s")
    return Progress(False, attempt, since, max(1, math.ceil(pause_after(what, attempt, key))))


def progress_after_waiting(
    what: str, ready: bool, looks: int, started: datetime, now: datetime, key: str = ""
) -> Progress:
    """The wait's progress as the state machine's loop takes it over: it counts the `looks`
    made inside the invocation, and its time from the call that started the operation."""
    return next_progress(what, {"attempt": looks - 1, "since": iso(started)}, ready, now, key)
