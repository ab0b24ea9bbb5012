"""The retention's decisions (logic/retention.py): which nights each drive keeps, and what
is never deleted whatever the keeps say."""

from datetime import UTC, datetime, timedelta
from typing import Any

from vss_restore import tags
from vss_restore.logic.retention import (
    DELETE,
    KEEP,
    Policy,
    Verdict,
    copies,
    decide,
    restoring,
)

INSTANCE = "i-0aaa1111bbb222333"
NOON = datetime(2026, 12, 10, 12, tzinfo=UTC)


def _backup(night: datetime, snapshot_id: str, *, device: str = "xvdb", **verdict: str) -> Any:
    return {
        "SnapshotId": snapshot_id,
        "StartTime": night,
        "State": "completed",
        "VolumeSize": 50,
        "Tags": tags.as_list(
            {
                "ConsistentSnapshot": "WindowsVSS",
                tags.INSTANCE_ID: INSTANCE,
                tags.DEVICE: device,
                **verdict,
            }
        ),
    }


def _consistent(source: dict[str, Any], snapshot_id: str, **extra: Any) -> Any:
    backup_tags = tags.as_dict(source["Tags"])
    return {
        "SnapshotId": snapshot_id,
        "StartTime": source["StartTime"] + timedelta(minutes=20),
        "State": extra.pop("State", "completed"),
        "VolumeSize": 50,
        "Tags": tags.as_list(
            {
                tags.RESOURCE: tags.CONSISTENT_SNAPSHOT,
                tags.SOURCE_SNAPSHOT: source["SnapshotId"],
                tags.INSTANCE_ID: INSTANCE,
                tags.DEVICE: backup_tags[tags.DEVICE],
                tags.BACKUP_TIME: source["StartTime"].isoformat(),
                **extra,
            }
        ),
    }


def _nights(count: int, *, verified: bool = True) -> tuple[list[Any], list[Any]]:
    """`count` nights up to NOON's, newest last, each verified with its consistent snapshot."""
    backups, consistent = [], []
    for back in range(count - 1, -1, -1):
        night = NOON.replace(hour=0) - timedelta(days=back)
        source_id, result_id = f"snap-b{back:04d}", f"snap-c{back:04d}"
        verdict = (
            {
                tags.STATUS: tags.VERIFIED,
                tags.RESULT_SNAPSHOT: result_id,
                tags.CHECKED_AT: (night + timedelta(hours=1)).isoformat(),
            }
            if verified
            else {}
        )
        backup = _backup(night, source_id, **verdict)
        backups.append(backup)
        consistent.append(_consistent(backup, result_id))
    return backups, consistent


def _decide(
    backups: list[Any],
    consistent: list[Any],
    policy: Policy | None = None,
    in_use: set[str] | None = None,
) -> dict[str, Verdict]:
    found = decide(copies(backups, consistent), policy or Policy(), NOON, in_use=in_use or set())
    return {v.snapshot_id: v for v in found}


def _kept_nights(verdicts: dict[str, Verdict], kind: str = "backup") -> list[str]:
    return sorted(v.night for v in verdicts.values() if v.kind == kind and v.action == KEEP)


def test_the_newest_of_each_kept_night_week_and_month_stays_the_rest_expires() -> None:
    # Given 60 verified nights of one drive, up to Thursday 10 December 2026,
    backups, consistent = _nights(60)
    # when the retention keeps 7 nights, 4 ISO weeks and 3 months,
    verdicts = _decide(backups, consistent)
    # then the nights kept are Dec 4-10, the Sundays that end the weeks before (Dec 6 is
    # one of the 7; Nov 29, Nov 22), and the last night of November and of October.
    expected = [
        "2026-10-31",
        "2026-11-22",
        "2026-11-29",
        "2026-11-30",
        *(f"2026-12-{d:02d}" for d in range(4, 11)),
    ]
    assert _kept_nights(verdicts) == expected
    assert _kept_nights(verdicts, "consistent") == expected
    # and each kept snapshot says which rule keeps it; each other one that it expired.
    assert verdicts["snap-b0000"].why == (
        "daily keep (1 of 7), weekly keep (1 of 4), monthly keep (1 of 3)"
    )
    assert verdicts["snap-b0004"].why == "daily keep (5 of 7), weekly keep (2 of 4)"
    assert verdicts["snap-b0011"].why == "weekly keep (3 of 4)"
    assert verdicts["snap-b0040"].why == "monthly keep (3 of 3)"
    expired = [v for v in verdicts.values() if v.action == DELETE]
    assert len(expired) == 2 * (60 - len(expected))
    assert all(v.why.startswith("expired: outside the last 7 nights") for v in expired)


def test_never_more_restore_points_per_drive_than_the_bound() -> None:
    policy = Policy(keep_daily=3, keep_weekly=2, keep_monthly=2)
    for count in (1, 3, 5, 20, 90):
        verdicts = _decide(*_nights(count), policy)
        kept = _kept_nights(verdicts)
        assert len(kept) <= policy.bound
        # a history no longer than the daily keep is kept whole
        assert count > 3 or len(kept) == count


def test_each_drive_is_judged_on_its_own() -> None:
    # Given two drives: D: backed up nightly, C: once, long ago,
    backups, consistent = _nights(10)
    old_c = _backup(NOON - timedelta(days=200), "snap-oldc", device="sda1")
    old_c_tags = tags.as_dict(old_c["Tags"])
    old_c["Tags"] = tags.as_list(
        {**old_c_tags, tags.STATUS: tags.VERIFIED, tags.RESULT_SNAPSHOT: "snap-oldcc"}
    )
    # when the retention keeps 1 night only,
    verdicts = _decide(
        [*backups, old_c],
        [*consistent, _consistent(old_c, "snap-oldcc")],
        Policy(keep_daily=1, keep_weekly=0, keep_monthly=0),
    )
    # then C:'s one backup is kept: it is C:'s newest night, not D:'s.
    assert verdicts["snap-oldc"].action == KEEP
    assert verdicts["snap-oldcc"].action == KEEP


def test_the_newest_verified_consistent_snapshot_of_a_drive_is_never_deleted() -> None:
    # Given 10 nights of which the last 3 restores failed (their verdict failed, no result),
    backups, consistent = _nights(10)
    for backup in backups[-3:]:
        backup["Tags"] = tags.as_list(
            {
                **tags.as_dict(backup["Tags"]),
                tags.STATUS: tags.FAILED,
                tags.RESULT_SNAPSHOT: "none",
            }
        )
    consistent = consistent[:-3]
    # when the retention keeps the last 2 nights only,
    verdicts = _decide(backups, consistent, Policy(keep_daily=2, keep_weekly=0, keep_monthly=0))
    # then the newest consistent snapshot verified (4 nights ago) stays, and says why.
    newest = verdicts["snap-c0003"]
    assert (newest.action, newest.why) == (KEEP, "the drive's newest verified consistent snapshot")
    assert verdicts["snap-b0003"].action == DELETE  # its source is not protected
    assert verdicts["snap-c0004"].action == DELETE


def test_a_snapshot_being_restored_or_not_yet_judged_is_kept() -> None:
    # Given 10 nights: the oldest being restored again (a temporary volume made from it),
    # the newest 2 without a verdict yet, and one consistent snapshot still pending,
    backups, consistent = _nights(10)
    for backup in backups[-2:]:
        backup["Tags"] = tags.as_list(
            {k: v for k, v in tags.as_dict(backup["Tags"]).items() if k != tags.STATUS}
        )
    consistent[0]["State"] = "pending"
    policy = Policy(keep_daily=1, keep_weekly=0, keep_monthly=0, restore_days=3)
    # when the retention keeps 1 night,
    verdicts = _decide(backups, consistent, policy, in_use={"snap-b0009"})
    # then none of them is deleted, each saying why.
    assert verdicts["snap-b0009"].why == "being restored (a temporary volume was made from it)"
    assert verdicts["snap-c0009"].why == "still pending"
    assert verdicts["snap-b0001"].why == "no verdict yet: its restore may still run"
    assert all(verdicts[s].action == KEEP for s in ("snap-b0009", "snap-c0009", "snap-b0001"))
    # A backup with no verdict older than the reconciliation's days expires like any other.
    backups[-2]["StartTime"] = NOON - timedelta(days=30)
    again = _decide(backups, consistent, policy, in_use={"snap-b0009"})
    assert again["snap-b0001"].action == DELETE


def test_a_snapshot_whose_tags_name_no_drive_or_source_is_never_judged() -> None:
    backups, consistent = _nights(3)
    stray = _backup(NOON - timedelta(days=90), "snap-stray")
    stray["Tags"] = tags.as_list({"ConsistentSnapshot": "WindowsVSS", tags.INSTANCE_ID: INSTANCE})
    orphan = _consistent(backups[0], "snap-orphan")
    orphan["Tags"] = tags.as_list(
        {k: v for k, v in tags.as_dict(orphan["Tags"]).items() if k != tags.SOURCE_SNAPSHOT}
    )
    verdicts = _decide(
        [*backups, stray],
        [*consistent, orphan],
        Policy(keep_daily=1, keep_weekly=0, keep_monthly=0),
    )
    assert verdicts["snap-stray"].why == "its tags name no drive: never judged"
    assert verdicts["snap-orphan"].why == "its tags name no source: never judged"


def test_a_consistent_snapshot_left_by_a_failed_restore_goes_even_in_a_kept_night() -> None:
    # Given last night's backup restored twice: a first restore failed after its consistent
    # snapshot (made at 00:20), the verdict of the second names another one,
    backups, consistent = _nights(2)
    left = _consistent(backups[-1], "snap-left")
    # when the retention runs,
    verdicts = _decide(backups, [*consistent, left])
    # then the one the verdict does not name, made before it, is deleted; the named one kept.
    assert verdicts["snap-left"].action == DELETE
    assert verdicts["snap-left"].why == "left by a restore that failed or was redone"
    assert verdicts["snap-c0000"].action == KEEP


def test_one_copy_deletes_the_verified_source_of_each_older_night() -> None:
    backups, consistent = _nights(4)
    verdicts = _decide(backups, consistent, Policy(one_copy=True))
    # The newest night keeps both (the hourly look reads its source's verdict); the others
    # their consistent snapshot only, which holds the same data, reverted.
    assert verdicts["snap-b0000"].action == KEEP
    for back in (1, 2, 3):
        source = verdicts[f"snap-b{back:04d}"]
        assert (source.action, source.holder) == (DELETE, f"snap-c{back:04d}")
        assert verdicts[f"snap-c{back:04d}"].action == KEEP
    # A source whose restore failed keeps its copy: nothing else holds its data.
    failed, _ = _nights(4, verified=False)
    kept = _decide(failed, [], Policy(one_copy=True, restore_days=0))
    assert all(v.action == KEEP for v in kept.values())


def test_a_consistent_snapshot_marked_verified_still_counts_once_its_source_is_gone() -> None:
    # After OneCopy deleted its source, the consistent snapshot's own status tag says it.
    _, consistent = _nights(3)
    consistent[0]["Tags"] = tags.as_list(
        {**tags.as_dict(consistent[0]["Tags"]), tags.STATUS: tags.VERIFIED}
    )
    verdicts = _decide([], consistent[:1], Policy(keep_daily=1, keep_weekly=0, keep_monthly=0))
    assert verdicts["snap-c0002"].why == "the drive's newest verified consistent snapshot"


def test_a_live_claim_means_the_snapshot_is_being_restored() -> None:
    now = NOON
    live = {"status": "running", "lease_until": str(int(now.timestamp()) + 60)}
    lapsed = {"status": "running", "lease_until": str(int(now.timestamp()) - 60)}
    assert restoring(live, now)
    assert not restoring(lapsed, now)
    assert not restoring({"status": "verified"}, now)
    assert not restoring({}, now)
