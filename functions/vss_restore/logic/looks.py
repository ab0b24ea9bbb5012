"""The shared look at our temporary volumes (issue #13): what one DescribeVolumes by tag
tells every wait, how old an answer may be, and what is kept of each volume in the ledger.

One elected looker a second calls DescribeVolumes filtered by our temporary-volume tag and
writes one small record per volume whose state changed; a wait reads its volume's record
instead of calling DescribeVolumes itself, and looks itself when no answer is fresh."""

import json
from dataclasses import dataclass
from typing import Any

from vss_restore import tags

# At most one shared look a second across the stack (the `volumes#look` item's election).
LOOK_EVERY_MS = 1000
# An answer older than this is not used: the wait looks itself, on today's schedule (no looker
# won, a looker died mid-look, a lost write).
FRESH_MS = 3000
# DescribeVolumes' page: "between 5 and 500" (EC2 API Reference, DescribeVolumes, MaxResults).
PAGE = 500
# A volume's record lives an hour from its last write (the ledger's TTL, `expires_at`); the
# looker writes it again once less than half of that is left, so a volume that stays in one
# state keeps a record, and one deleted outside the workflow loses it within the hour plus
# DynamoDB's TTL delay. Reads treat an expired record as absent, whatever TTL has done.
KEEP_SECONDS = 3600
RENEW_SECONDS = KEEP_SECONDS // 2
# What a wait looks for: the tag the looker filters on, so an answer holds only our volumes.
OUR_FILTER = {"Name": f"tag:{tags.RESOURCE}", "Values": [tags.TEMPORARY_VOLUME]}
# The tags kept in a record: the ones require_ours reads (aws/ec2.py).
KEPT_TAGS = (tags.RESOURCE, tags.SOURCE_SNAPSHOT)


@dataclass(frozen=True)
class Record:
    """What the ledger keeps of one volume: as DescribeVolumes showed it, cut to what the waits
    and the "ours?" checks read, and when (the look's start, epoch ms)."""

    volume: dict[str, Any]
    seen_at_ms: int
    expires_at: int  # epoch s

    def live(self, now_s: int) -> bool:
        return self.expires_at > now_s


def kept(volume: dict[str, Any]) -> dict[str, Any]:
    """The volume cut to its state, snapshot, attachments and our two tags (about 200 B)."""
    volume_tags = tags.as_dict(volume.get("Tags"))
    return {
        "VolumeId": str(volume.get("VolumeId", "")),
        "State": str(volume.get("State", "")),
        "SnapshotId": str(volume.get("SnapshotId", "")),
        "Attachments": [
            {
                "InstanceId": str(a.get("InstanceId", "")),
                "State": str(a.get("State", "")),
                "Device": str(a.get("Device", "")),
            }
            for a in volume.get("Attachments", [])
        ],
        "Tags": tags.as_list({k: volume_tags[k] for k in KEPT_TAGS if k in volume_tags}),
    }


def encode(volume: dict[str, Any]) -> str:
    """The record's text: the same volume always gives the same text (compared as is)."""
    return json.dumps(kept(volume), sort_keys=True, separators=(",", ":"))


def decode(text: str) -> dict[str, Any]:
    return dict(json.loads(text))


def to_write(
    answer: dict[str, dict[str, Any]], stored: dict[str, tuple[str, int]], now_s: int
) -> dict[str, str]:
    """The volumes of the answer whose record must be written: new, changed, or within
    RENEW_SECONDS of expiring. `stored`: volume -> (record text, expires_at)."""
    written = {}
    for volume_id, volume in answer.items():
        text = encode(volume)
        before = stored.get(volume_id)
        if before is None or before[0] != text or before[1] - now_s < RENEW_SECONDS:
            written[volume_id] = text
    return written


def elect_now(looked_at_ms: int, now_ms: int) -> bool:
    """Whether a look may start now: the last one started at least LOOK_EVERY_MS ago."""
    return looked_at_ms <= now_ms - LOOK_EVERY_MS


def usable(answered_at_ms: int, record: Record | None, now_ms: int) -> dict[str, Any] | None:
    """The volume as the last complete look saw it, if that look started at most FRESH_MS ago
    and its record is live; None: the wait looks itself. A volume absent from a fresh answer
    is not taken as gone (one just created may not be listed yet, and one not ours is never
    listed): its wait looks itself, and its own look decides."""
    if record is None or now_ms - answered_at_ms > FRESH_MS:
        return None
    if not record.live(now_ms // 1000):
        return None
    return record.volume
