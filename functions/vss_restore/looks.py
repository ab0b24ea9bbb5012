"""One look for many waits (issue #13): a volume's state read from the ledger's record of the
last shared DescribeVolumes, with the wait's own look as the fallback.

The rules (what is fresh, what is written) are logic/looks.py; this joins the EC2 and
DynamoDB adapters. A ledger that cannot be read or written never fails a wait: it looks
itself, as before the shared look."""

from dataclasses import dataclass
from typing import Any

from vss_restore import clock
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.errors import AwsThrottled
from vss_restore.logic import looks
from vss_restore.observability import logger


@dataclass(frozen=True)
class SharedLook:
    """Looks at our temporary volumes for a wait or an "ours?" check, the same interface as
    Ec2.volume: the volume as DescribeVolumes shows it, None when it does not exist."""

    ec2: Ec2
    ledger: Ledger

    def volume(self, volume_id: str) -> dict[str, Any] | None:
        now_ms = _ms()
        try:
            looked_at, answered_at, record = self.ledger.volume_answer(volume_id)
            elected = looks.elect_now(looked_at, now_ms) and self.ledger.elect_looker(
                now_ms, looks.LOOK_EVERY_MS
            )
        except AwsThrottled as exc:  # the ledger is busy: look as before the shared look
            logger.warning("shared look unavailable, looking at %s itself: %s", volume_id, exc)
            return self.ec2.volume(volume_id)
        if elected:
            # EC2's throttling goes to the step's Retry, as a wait's own look's did.
            answer = self.ec2.our_temporary_volumes(looks.PAGE)
            self._record(answer, now_ms)
            if volume_id in answer:
                return looks.kept(answer[volume_id])
        else:
            seen = looks.usable(answered_at, record, now_ms)
            if seen is not None:
                return seen
        # No fresh answer, or a volume the last look did not list (just created, gone, or not
        # ours: its own look decides, and require_ours refuses one not ours).
        return self.ec2.volume(volume_id)

    def forget(self, volume_id: str) -> None:
        """A deleted volume's record goes with it."""
        try:
            self.ledger.forget_volume(volume_id)
        except AwsThrottled as exc:  # its TTL drops it within the hour
            logger.warning("record of %s left to its TTL: %s", volume_id, exc)

    def _record(self, answer: dict[str, dict[str, Any]], looked_at_ms: int) -> None:
        """Write the records that changed, then mark the look complete; a looker that cannot
        (the ledger throttled, or it dies first) leaves the last answer to go stale."""
        now_s = looked_at_ms // 1000
        try:
            stored = self.ledger.volume_records(sorted(answer))
            expires_at = now_s + looks.KEEP_SECONDS
            for volume_id, text in looks.to_write(answer, stored, now_s).items():
                self.ledger.note_volume(volume_id, text, looked_at_ms, expires_at)
            self.ledger.note_answered(looked_at_ms)
        except AwsThrottled as exc:
            logger.warning("shared look's answer not recorded: %s", exc)


def _ms() -> int:
    return int(clock.now().timestamp() * 1000)
