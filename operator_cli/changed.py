"""`report --storage`: the data the kept snapshots add, measured with EBS direct APIs'
ListChangedBlocks instead of estimated from volume sizes (operator_cli/storage.py).

What EBS stores for an incremental snapshot is the blocks that changed since the one before
it in its chain (EBS User Guide, "How Amazon EBS snapshots work"). ListChangedBlocks lists
them, 512 KiB each (BlockSize 524288), for two snapshots "of the same volume/snapshot
lineage" (EBS direct APIs reference, ListChangedBlocks). So per drive:
- each consistent snapshot against its source (the vss-restore:source-snapshot tag): what
  the revert rewrote, the data the verification adds;
- each backup against the drive's backup before it: the night's changes.
The first backup of a drive has no snapshot before it: its full copy stays the estimate.

What the operator needs: `ebs:ListChangedBlocks` on both snapshots of each pair (resource
arn:aws:ec2:REGION::snapshot/ID), and `kms:Decrypt` on the key of an encrypted one (EBS
User Guide, "Control access to EBS direct APIs using IAM"). A pair that cannot be measured
is named with the reason: no permission, throttled after retries, another lineage (a
consistent snapshot encrypted with another key than its source is a full copy of its own),
not completed yet, or the report's bound on calls reached.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from operator_cli.storage import PRICE_PER_GB_MONTH
from vss_restore import tags

BLOCK_SIZE = 512 * 1024  # bytes: ListChangedBlocks' BlockSize
GIB = 1024**3
PAGE = 10_000  # MaxResults: 100 to 10,000 blocks a call (ListChangedBlocks reference)
# At most this many ListChangedBlocks calls per report: 500 pages of 10,000 blocks is 2.4 TiB
# of changes, and 10 s of the account's quota of 50 requests per second ("Quotas for
# Amazon EBS"), which the backups' and others' tools share.
MAX_CALLS = 500
# The SDK retries these (with backoff; the account's client allows 5 attempts): a pair still
# throttled after that is reported, not waited for.
THROTTLED = {"RequestThrottledException", "ThrottlingException"}


@dataclass(frozen=True)
class Unmeasured:
    first: str
    second: str
    reason: str

    def __str__(self) -> str:
        return f"{self.first} -> {self.second}: {self.reason}"


@dataclass(frozen=True)
class InstanceChanges:
    instance_id: str
    pairs_measured: int
    consistent_gib: float  # the consistent snapshots' changes against their source
    backups_gib: float  # each backup's changes against the drive's backup before it
    changed_gib: float
    monthly_usd: float
    unmeasured: list[Unmeasured] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["unmeasured"] = [asdict(u) for u in self.unmeasured]
        return found


@dataclass
class _Calls:
    bound: int
    left: int


@dataclass
class _Instance:
    measured: int = 0
    consistent_blocks: int = 0
    backup_blocks: int = 0
    unmeasured: list[Unmeasured] = field(default_factory=list)


def measure(
    ebs: Any,
    backups: Iterable[dict[str, Any]],
    consistent: Iterable[dict[str, Any]],
    max_calls: int = MAX_CALLS,
) -> list[InstanceChanges]:
    """Per instance, the changed data of each pair (see the module's note), newest first
    within a drive."""
    calls = _Calls(max_calls, max_calls)
    found: dict[str, _Instance] = {}
    for instance_id, first, second, is_consistent in _pairs(backups, consistent):
        instance = found.setdefault(instance_id, _Instance())
        blocks, reason = _changed_blocks(ebs, first, second, calls)
        if reason:
            instance.unmeasured.append(Unmeasured(first, second, reason))
        elif is_consistent:
            instance.measured += 1
            instance.consistent_blocks += blocks
        else:
            instance.measured += 1
            instance.backup_blocks += blocks
    rows = []
    for instance_id, instance in sorted(found.items()):
        consistent_gib = instance.consistent_blocks * BLOCK_SIZE / GIB
        backups_gib = instance.backup_blocks * BLOCK_SIZE / GIB
        changed = consistent_gib + backups_gib
        rows.append(
            InstanceChanges(
                instance_id=instance_id,
                pairs_measured=instance.measured,
                consistent_gib=round(consistent_gib, 3),
                backups_gib=round(backups_gib, 3),
                changed_gib=round(changed, 3),
                monthly_usd=round(changed * PRICE_PER_GB_MONTH, 2),
                unmeasured=instance.unmeasured,
            )
        )
    return rows


def total_monthly(rows: Iterable[InstanceChanges]) -> float:
    return round(sum(r.monthly_usd for r in rows), 2)


def _pairs(
    backups: Iterable[dict[str, Any]], consistent: Iterable[dict[str, Any]]
) -> list[tuple[str, str, str, bool]]:
    """(instance, first snapshot, second snapshot, is a consistent one against its source)."""
    drives: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for snapshot in backups:
        found = tags.as_dict(snapshot.get("Tags"))
        key = (found.get(tags.INSTANCE_ID, ""), found.get(tags.DEVICE, ""))
        drives.setdefault(key, []).append(snapshot)
    pairs = []
    for (instance_id, _), taken in sorted(drives.items()):
        taken.sort(key=lambda s: s["StartTime"])
        pairs += [
            (instance_id, str(a["SnapshotId"]), str(b["SnapshotId"]), False)
            for a, b in itertools.pairwise(taken)
        ]
    for snapshot in consistent:
        found = tags.as_dict(snapshot.get("Tags"))
        source = found.get(tags.SOURCE_SNAPSHOT, "")
        instance_id = found.get(tags.INSTANCE_ID, "")
        pairs.append((instance_id, source, str(snapshot["SnapshotId"]), True))
    return pairs


def _changed_blocks(ebs: Any, first: str, second: str, calls: _Calls) -> tuple[int, str]:
    """How many blocks differ, or why that could not be measured."""
    if not first:
        return 0, "its source snapshot is not named (no vss-restore:source-snapshot tag)"
    blocks, token = 0, ""
    while True:
        if calls.left <= 0:
            return 0, f"the bound of {calls.bound} ListChangedBlocks calls was reached"
        calls.left -= 1
        request = {"FirstSnapshotId": first, "SecondSnapshotId": second, "MaxResults": PAGE}
        try:
            page = ebs.list_changed_blocks(**request, **({"NextToken": token} if token else {}))
        except ClientError as exc:
            return 0, _why(exc)
        blocks += len(page.get("ChangedBlocks", []))
        token = page.get("NextToken") or ""
        if not token:
            return blocks, ""


def _why(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    reason = str(exc.response.get("Reason") or "")
    message = error.get("Message", "")
    if code == "AccessDeniedException":
        return f"no permission (ebs:ListChangedBlocks, or kms:Decrypt on its key): {message}"
    if code in THROTTLED:
        return "throttled after retries (the account's ListChangedBlocks quota): run again later"
    if code == "ValidationException" and reason == "UNRELATED_SNAPSHOTS":
        return (
            "another lineage (encrypted with another key than its source?): "
            "a full copy, not measurable as changes"
        )
    if code == "ResourceNotFoundException":
        return f"a snapshot is gone: {message}"
    return f"{code}: {message}"
