"""Which of our snapshots to keep: grandfather-father-son keeps of each drive's nights.

A drive (the backed-up instance and the device, from the backup's own tags) has one restore
point per backup: the backup's crash-consistent snapshot and the consistent snapshot made
from it. The newest point of each of the last `keep_daily` nights that have one is kept,
likewise of the last `keep_weekly` ISO weeks and `keep_monthly` months (each rule counts on
its own, as restic's `forget --keep-daily/--keep-weekly/--keep-monthly` does); the rest
expires. Whatever expires, these are never deleted: the newest verified consistent snapshot
of a drive, a snapshot being restored (a temporary volume made from it, a live claim, a
backup still without a verdict within the reconciliation's days, a consistent snapshot
still pending), and anything not ours (only the snapshots listed here by our tags ever
reach this module; the adapter and IAM check the tags again).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from vss_restore import tags
from vss_restore.aws.ledger import RUNNING

BACKUP = "backup"
CONSISTENT = "consistent"
KEEP = "keep"
DELETE = "delete"
# At most this many DeleteSnapshot calls per run; the rest waits for the next run (EC2's
# mutating calls refill at about 5 a second, and a run has 300 s).
MAX_DELETIONS_PER_RUN = 100


@dataclass(frozen=True)
class Policy:
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 3
    # Once a point's consistent snapshot is verified, its crash-consistent source goes.
    one_copy: bool = False
    # A backup without a verdict younger than this may still be restored by the
    # reconciliation (ReconcileDays), so it is not deleted.
    restore_days: int = 3

    @property
    def bound(self) -> int:
        """The most restore points a drive keeps."""
        return self.keep_daily + self.keep_weekly + self.keep_monthly


@dataclass(frozen=True)
class Copy:
    """One of our snapshots, as retention sees it."""

    snapshot_id: str
    kind: str  # BACKUP | CONSISTENT
    drive: str  # "i-...:xvdb"; "" when its tags do not say
    taken: datetime  # when the backup was taken (a consistent snapshot: its source's time)
    state: str
    size_gib: int
    source: str = ""  # CONSISTENT: the backup it was made from; BACKUP: itself
    status: str = ""  # BACKUP: its verdict; CONSISTENT: its own status tag (one copy)
    result: str = ""  # BACKUP: the consistent snapshot its verdict names
    checked_at: str = ""  # BACKUP: when its verdict was written
    started: datetime | None = None  # the snapshot's own StartTime

    @property
    def night(self) -> date:
        return self.taken.date()


@dataclass(frozen=True)
class Verdict:
    """What retention decided for one snapshot, and why."""

    snapshot_id: str
    kind: str
    drive: str
    night: str
    action: str  # KEEP | DELETE
    why: str
    size_gib: int = 0
    # One copy: the consistent snapshot that holds this backup's data, tagged verified first.
    holder: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "kind": self.kind,
            "drive": self.drive,
            "night": self.night,
            "action": self.action,
            "why": self.why,
            "size_gib": self.size_gib,
            **({"holder": self.holder} if self.holder else {}),
        }


@dataclass
class _Point:
    source: str
    backup: Copy | None = None
    consistent: list[Copy] = field(default_factory=list)

    @property
    def taken(self) -> datetime:
        return self.backup.taken if self.backup else min(c.taken for c in self.consistent)


def copies(backups: Iterable[dict[str, Any]], consistent: Iterable[dict[str, Any]]) -> list[Copy]:
    """Our snapshots from DescribeSnapshots: the backup's and the workflow's consistent ones."""
    found: list[Copy] = []
    by_id: dict[str, Copy] = {}
    for snapshot in backups:
        snapshot_tags = tags.as_dict(snapshot.get("Tags"))
        backup = Copy(
            snapshot_id=str(snapshot["SnapshotId"]),
            kind=BACKUP,
            drive=_drive(snapshot_tags),
            taken=snapshot["StartTime"],
            state=str(snapshot.get("State", "")),
            size_gib=int(snapshot.get("VolumeSize") or 0),
            source=str(snapshot["SnapshotId"]),
            status=snapshot_tags.get(tags.STATUS, ""),
            result=snapshot_tags.get(tags.RESULT_SNAPSHOT, ""),
            checked_at=snapshot_tags.get(tags.CHECKED_AT, ""),
            started=snapshot["StartTime"],
        )
        by_id[backup.snapshot_id] = backup
        found.append(backup)
    for snapshot in consistent:
        snapshot_tags = tags.as_dict(snapshot.get("Tags"))
        source = snapshot_tags.get(tags.SOURCE_SNAPSHOT, "")
        parent = by_id.get(source)
        taken = parse_time(snapshot_tags.get(tags.BACKUP_TIME, "")) or (
            parent.taken if parent else None
        )
        found.append(
            Copy(
                snapshot_id=str(snapshot["SnapshotId"]),
                kind=CONSISTENT,
                drive=_drive(snapshot_tags) or (parent.drive if parent else ""),
                # Unplaceable (no lineage, source gone): dated as made, kept below.
                taken=taken or snapshot["StartTime"],
                state=str(snapshot.get("State", "")),
                size_gib=int(snapshot.get("VolumeSize") or 0),
                source=source,
                status=snapshot_tags.get(tags.STATUS, ""),
                checked_at=snapshot_tags.get(tags.CHECKED_AT, ""),
                started=snapshot["StartTime"],
            )
        )
    return found


def _drive(snapshot_tags: dict[str, str]) -> str:
    instance, device = snapshot_tags.get(tags.INSTANCE_ID, ""), snapshot_tags.get(tags.DEVICE, "")
    return f"{instance}:{device}" if instance and device else ""


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 tag value (Z for UTC) as a datetime; None if absent or not a time."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def decide(
    found: list[Copy],
    policy: Policy,
    now: datetime,
    *,
    in_use: set[str],
) -> list[Verdict]:
    """Keep or delete, and why, for every one of our snapshots. `in_use`: snapshots a
    temporary volume was made from (a restore under way, or one that left its volume)."""
    verdicts: list[Verdict] = []
    drives: dict[str, dict[str, _Point]] = defaultdict(dict)
    for copy in found:
        if not copy.drive:
            verdicts.append(_keep(copy, "its tags name no drive: never judged"))
            continue
        point = drives[copy.drive].setdefault(copy.source or copy.snapshot_id, _Point(copy.source))
        if copy.kind == BACKUP:
            point.backup = copy
        else:
            point.consistent.append(copy)
    for points in drives.values():
        verdicts += _decide_drive(list(points.values()), policy, now, in_use)
    return sorted(verdicts, key=lambda v: (v.drive, v.night, v.kind, v.snapshot_id))


def _decide_drive(
    points: list[_Point], policy: Policy, now: datetime, in_use: set[str]
) -> list[Verdict]:
    points.sort(key=lambda p: (p.taken, p.source), reverse=True)
    kept = _gfs(points, policy)
    newest_verified = _newest_verified_consistent(points)
    verdicts: list[Verdict] = []
    for index, point in enumerate(points):
        reasons = kept.get(point.source, [])
        for copy in ([point.backup] if point.backup else []) + point.consistent:
            if copy.snapshot_id == newest_verified:
                verdicts.append(_keep(copy, "the drive's newest verified consistent snapshot"))
                continue
            guard = _guarded(copy, policy, now, in_use)
            if guard:
                verdicts.append(_keep(copy, guard))
            elif not reasons:
                verdicts.append(_delete(copy, "expired: " + _outside(policy)))
            elif copy.kind == CONSISTENT and _left_by_failed_restore(copy, point.backup):
                verdicts.append(_delete(copy, "left by a restore that failed or was redone"))
            elif copy.kind == BACKUP and policy.one_copy and index > 0 and _verified(copy, point):
                verdicts.append(
                    replace(
                        _delete(copy, f"one copy: the consistent snapshot {copy.result} holds it"),
                        holder=copy.result,
                    )
                )
            else:
                verdicts.append(_keep(copy, ", ".join(reasons)))
    return verdicts


def _gfs(points: list[_Point], policy: Policy) -> dict[str, list[str]]:
    """The points each rule keeps (newest first), by source: the newest point of each of the
    last N days, ISO weeks and months that have one."""
    rules = (
        ("daily", policy.keep_daily),
        ("weekly", policy.keep_weekly),
        ("monthly", policy.keep_monthly),
    )
    kept: dict[str, list[str]] = defaultdict(list)
    for name, count in rules:
        seen: list[Any] = []
        for point in points:
            key = _period(name, point.taken.date())
            if key in seen:
                continue
            if len(seen) == count:
                break
            seen.append(key)
            kept[point.source].append(f"{name} keep ({len(seen)} of {count})")
    return kept


def _period(rule: str, day: date) -> Any:
    """The night, its ISO week or its month."""
    if rule == "weekly":
        return day.isocalendar()[:2]
    if rule == "monthly":
        return (day.year, day.month)
    return day


def _newest_verified_consistent(points: list[_Point]) -> str:
    for point in points:  # newest first
        for copy in sorted(point.consistent, key=lambda c: c.started or c.taken, reverse=True):
            if copy.state != "completed":
                continue
            named = point.backup is not None and point.backup.result == copy.snapshot_id
            if (named and point.backup is not None and point.backup.status == tags.VERIFIED) or (
                copy.status == tags.VERIFIED
            ):
                return copy.snapshot_id
    return ""


def _guarded(copy: Copy, policy: Policy, now: datetime, in_use: set[str]) -> str:
    """Why this snapshot may not be deleted whatever the keeps say; "" when it may."""
    if copy.snapshot_id in in_use:
        return "being restored (a temporary volume was made from it)"
    if copy.state == "pending":
        return "still pending"
    if (
        copy.kind == BACKUP
        and not copy.status
        and copy.taken > now - timedelta(days=policy.restore_days + 1)
    ):
        return "no verdict yet: its restore may still run"
    if copy.kind == CONSISTENT and not copy.source:
        return "its tags name no source: never judged"
    return ""


def _verified(backup: Copy, point: _Point) -> bool:
    """The backup is verified and its consistent snapshot, completed, is still there."""
    return backup.status == tags.VERIFIED and any(
        c.snapshot_id == backup.result and c.state == "completed" for c in point.consistent
    )


def restoring(claim: dict[str, str], now: datetime) -> bool:
    """A live claim in the ledger: an execution is restoring the snapshot right now."""
    return claim.get("status") == RUNNING and int(claim.get("lease_until") or 0) >= now.timestamp()


def _left_by_failed_restore(copy: Copy, backup: Copy | None) -> bool:
    """Not the snapshot its backup's verdict names, and made before that verdict: an earlier
    or failed restore's (the failure path deletes its own since #16; older ones remain)."""
    if backup is None or not backup.status or backup.result == copy.snapshot_id:
        return False
    if copy.status == tags.VERIFIED:
        return False
    verdict_time = parse_time(backup.checked_at)
    return (
        copy.state in {"completed", "error"}
        and verdict_time is not None
        and copy.started is not None
        and copy.started < verdict_time
    )


def _outside(policy: Policy) -> str:
    return (
        f"outside the last {policy.keep_daily} nights, {policy.keep_weekly} weeks and "
        f"{policy.keep_monthly} months kept"
    )


def _keep(copy: Copy, why: str) -> Verdict:
    return Verdict(
        copy.snapshot_id, copy.kind, copy.drive, copy.night.isoformat(), KEEP, why, copy.size_gib
    )


def _delete(copy: Copy, why: str) -> Verdict:
    return Verdict(
        copy.snapshot_id,
        copy.kind,
        copy.drive,
        copy.night.isoformat(),
        DELETE,
        why,
        copy.size_gib,
    )


def summary_lines(verdicts: list[Verdict], *, deleting: bool, done: dict[str, str]) -> list[str]:
    """The alert's body: what was (or would be) deleted, and what each drive keeps."""
    deleted = [v for v in verdicts if v.action == DELETE]
    verb = "deleted" if deleting else "would be deleted (dry run)"
    lines = [f"{len(deleted)} snapshot(s) of vss-restore {verb}.", ""]
    for verdict in deleted:
        outcome = done.get(verdict.snapshot_id, "") if deleting else ""
        lines.append(
            f"{verdict.snapshot_id}  {verdict.kind:<10}  {verdict.drive}  night {verdict.night}"
            f"  {verdict.size_gib} GiB  {verdict.why}" + (f"  [{outcome}]" if outcome else "")
        )
    lines += ["", "Kept per drive:"]
    per_drive: dict[str, list[Verdict]] = defaultdict(list)
    for verdict in verdicts:
        if verdict.action == KEEP:
            per_drive[verdict.drive or "(no drive)"].append(verdict)
    for drive, kept in sorted(per_drive.items()):
        nights = sorted({v.night for v in kept})
        lines.append(
            f"  {drive}: {len(kept)} snapshot(s), {len(nights)} night(s) {nights[0]}..{nights[-1]}"
        )
    if not deleting:
        lines += [
            "",
            "DeleteExpiredSnapshots is false: nothing was deleted. Read the list, then set it "
            "to true.",
        ]
    return lines
