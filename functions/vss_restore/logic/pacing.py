"""The pacing of our own EC2 mutating calls: one slot per call, spaced at a rate under the
account's token bucket for that API, so that the restores wait their turn instead of retrying
into a bucket that is empty.

EC2 refills each API's bucket at a fixed rate (EC2 Developer Guide, "Request throttling for
the Amazon EC2 API": docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html; the
figures below are FIELD-NOTES §7's reading of it, ASSUMED until re-read on a real account).
Every caller of the account draws on the same bucket: the backup's own CreateSnapshot
(documents/backup.ps1, bounded by design), the operator's own tools, and ours. Our rates
leave room for both (DEFAULT_RATES)."""

import math
from dataclasses import dataclass

from vss_restore.errors import InvalidRequest

CREATE_SNAPSHOT = "ec2:CreateSnapshot"
CREATE_VOLUME = "ec2:CreateVolume"
ATTACH_VOLUME = "ec2:AttachVolume"
PACED = (CREATE_SNAPSHOT, CREATE_VOLUME, ATTACH_VOLUME)
# Where each pace is set: the function's environment (template parameters PaceCreateSnapshot,
# PaceCreateVolume, PaceAttachVolume).
ENVIRONMENT = {
    CREATE_SNAPSHOT: "PACE_CREATE_SNAPSHOT",
    CREATE_VOLUME: "PACE_CREATE_VOLUME",
    ATTACH_VOLUME: "PACE_ATTACH_VOLUME",
}

# Each paced API's bucket refill, tokens per second (EC2 Developer Guide, "Request throttling
# for the Amazon EC2 API": CreateSnapshot and CreateVolume have buckets of their own, 100 and
# 5/s; AttachVolume is an "other mutating action", 50 and 5/s). A rate above it cannot be
# kept, whatever else the account does.
REFILL = {CREATE_SNAPSHOT: 5.0, CREATE_VOLUME: 5.0, ATTACH_VOLUME: 5.0}
BUCKET_SIZE = {CREATE_SNAPSHOT: 100.0, CREATE_VOLUME: 100.0, ATTACH_VOLUME: 50.0}

# Our defaults: the consistent snapshots take 2 of CreateSnapshot's 5 a second, beside the
# backup's 2.5 at most (documents/backup.ps1's $SnapshotGapSeconds and the template's
# BackupMaxConcurrency: 100 scripts, one CreateSnapshot each per 40 s); CreateVolume and
# AttachVolume 4 of 5. At least 0.5 a second of each bucket (10%; 1 a second of
# CreateVolume's and AttachVolume's) is left for the operator's own calls
# (docs/performance.md, "Pacing"; tests/unit/test_pacing.py adds them up). CreateSnapshot's
# 2, not less: at 1.5 the restores finish faster than their consistent snapshots are taken,
# and at 10,000 instances up to 3,500 temporary volumes wait for their slot (billed, and
# 7 pages of the shared DescribeVolumes: measured with bench/des.py, docs/performance.md).
DEFAULT_RATES = {CREATE_SNAPSHOT: 2.0, CREATE_VOLUME: 4.0, ATTACH_VOLUME: 4.0}
HEADROOM_PER_SECOND = 0.5

# A slot this close is waited for inside the invocation (the paced functions' Timeout is
# 30 s, their task's 60 s: room for the wait and the call); a later one is handed to the
# state machine's Wait (SecondsPath), so that no Lambda idles for long.
WAIT_IN_INVOCATION_SECONDS = 10.0
# Kept for the call and the rest of the step after the wait, in the invocation.
CALL_SECONDS = 15.0


@dataclass(frozen=True)
class Slot:
    """When a paced call may be made (epoch seconds), and how long until then."""

    at: float
    wait_seconds: int  # whole seconds, rounded up: a Wait state's SecondsPath

    def as_dict(self) -> dict[str, float | int]:
        return {"at": self.at, "wait_seconds": self.wait_seconds}


def gap_seconds(rate: float) -> float:
    """The time between two slots at `rate` calls a second."""
    return 1.0 / rate


def take(next_at: float | None, now: float, gap: float) -> tuple[float, float]:
    """The slot a caller gets at `now`, and the next free slot after it: a free pacer (its
    next slot past) gives `now`, a busy one its next slot. The ledger does this in one atomic
    update (Ledger.take_slot); bench/des.py models it with this function."""
    slot = now if next_at is None or next_at < now else next_at
    return slot, slot + gap


def slot(at: float, now: float) -> Slot:
    return Slot(at, max(0, math.ceil(at - now)))


def waits_in_invocation(wait: float, seconds_left: float) -> bool:
    """Whether the wait for a slot is short enough to be spent inside this invocation."""
    return wait <= min(WAIT_IN_INVOCATION_SECONDS, seconds_left - CALL_SECONDS)


def rate(action: str, value: str) -> float:
    """A paced rate as configured: a number of calls a second, positive and not above the
    API's documented refill."""
    try:
        parsed = float(value)
    except ValueError:
        raise InvalidRequest(f"the pace of {action} {value!r} is not a number") from None
    if not math.isfinite(parsed) or parsed <= 0 or parsed > REFILL[action]:
        raise InvalidRequest(
            f"the pace of {action} {value!r} is not above 0 and at most its bucket's refill,"
            f" {REFILL[action]:g} a second"
        )
    return parsed
