"""Which older verified backups to restore again: a random one per backed-up instance.

AWS Backup's restore testing picks its recovery points so ("RANDOM_WITHIN_WINDOW": a random
recovery point among those of the last SelectionWindowDays, 1 to 365, default 30; AWS
Backup API reference, RestoreTestingRecoveryPointSelection). Here, per instance: one of its
drives at random, then one of that drive's verified backups of the window at random, never
the drive's newest (the nightly restore has just verified it). A key disabled, a permission
removed or a helper changed since the backup was verified is found so, before the day the
backup is needed.

With OneCopy the retention deletes an older night's backup once its consistent snapshot is
verified (and tags that one verified): such a night is drawn through its consistent
snapshot, which the workflow then only inspects and checks (resolve.decide, check-only).
"""

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from vss_restore import tags
from vss_restore.logic.retention import parse_time

MIN_WINDOW_DAYS = 1
MAX_WINDOW_DAYS = 365  # AWS Backup's SelectionWindowDays bounds
# At most this many restores started per run (one per instance: a bigger fleet is sampled).
MAX_STARTS_PER_RUN = 100
NAME_PREFIX = "reverify-"


@dataclass(frozen=True)
class Pick:
    snapshot_id: str
    instance_id: str
    device: str
    taken: datetime

    def as_dict(self) -> dict[str, str]:
        return {
            "snapshot_id": self.snapshot_id,
            "instance_id": self.instance_id,
            "device": self.device,
            "taken": self.taken.isoformat(),
        }


def sample(
    backups: Iterable[dict[str, Any]],
    now: datetime,
    window_days: int,
    rng: random.Random,
    consistent: Iterable[dict[str, Any]] = (),
) -> list[Pick]:
    """One random older verified restore point per instance (of a random drive), within the
    window: a backup, or (its backup gone, OneCopy) our consistent snapshot of that night."""
    by_drive: dict[tuple[str, str], list[tuple[Pick, bool]]] = defaultdict(list)
    listed = list(backups)
    for snapshot in listed:
        if point := _point(snapshot, snapshot["StartTime"]):
            by_drive[point[0]].append(point[1])
    sources = {str(s["SnapshotId"]) for s in listed}
    for snapshot in consistent:
        snapshot_tags = tags.as_dict(snapshot.get("Tags"))
        if snapshot_tags.get(tags.SOURCE_SNAPSHOT, "") in sources:
            continue  # the night's backup is still there: drawn as the backup
        # Dated by its night (the lineage's backup time), as the retention dates it.
        night = parse_time(snapshot_tags.get(tags.BACKUP_TIME, ""))
        if night is not None and (point := _point(snapshot, night)):
            by_drive[point[0]].append(point[1])
    since = now - timedelta(days=window_days)
    candidates: dict[str, dict[str, list[Pick]]] = defaultdict(dict)
    for (instance_id, device), found in by_drive.items():
        # The drive's newest backup, verified or not, is the nightly restore's to verify.
        newest = max(pick.taken for pick, _ in found)
        older = [pick for pick, verified in found if verified and since <= pick.taken < newest]
        if older:
            candidates[instance_id][device] = sorted(older, key=lambda p: (p.taken, p.snapshot_id))
    # Sorted before drawing: the same snapshots and seed give the same sample.
    chosen = []
    for instance_id in sorted(candidates):
        drives = candidates[instance_id]
        chosen.append(rng.choice(drives[rng.choice(sorted(drives))]))
    return chosen[:MAX_STARTS_PER_RUN]


def _point(
    snapshot: dict[str, Any], taken: datetime
) -> tuple[tuple[str, str], tuple[Pick, bool]] | None:
    """The drive a snapshot belongs to, its pick, and whether it may be drawn (verified and
    completed); None when its tags name no instance."""
    snapshot_tags = tags.as_dict(snapshot.get("Tags"))
    instance_id = snapshot_tags.get(tags.INSTANCE_ID, "")
    if not instance_id:
        return None
    device = snapshot_tags.get(tags.DEVICE) or str(snapshot.get("VolumeId", ""))
    pick = Pick(str(snapshot["SnapshotId"]), instance_id, device, taken)
    verified = (
        snapshot.get("State") == "completed" and snapshot_tags.get(tags.STATUS) == tags.VERIFIED
    )
    return (instance_id, device), (pick, verified)


def execution_name(pick: Pick, day: datetime) -> str:
    """One name per snapshot and day: a retried run that day starts nothing new."""
    return f"{NAME_PREFIX}{pick.snapshot_id}-{day:%Y%m%d}"


def seed(day: datetime) -> str:
    """The draw's seed: the day, so that a retried run draws the same sample (and its
    executions' names make the retry start nothing new), and each week draws anew."""
    return day.strftime("%Y-%m-%d")
