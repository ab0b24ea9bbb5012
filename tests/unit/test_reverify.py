"""Re-verification: which older verified backups are restored again, and how a restore in
re-verify mode is asked for and resolved (its claim: test_ledger.py)."""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.unit.test_logic_resolve import described
from vss_restore import tags, turns
from vss_restore.aws.ec2 import CONSISTENT_DESCRIPTION
from vss_restore.aws.ledger import Ledger
from vss_restore.errors import InvalidRequest
from vss_restore.handlers import (
    claim_snapshot,
    clean_up,
    record_verdict,
    release_execution,
    start_reverifications,
)
from vss_restore.logic import reverify
from vss_restore.logic.request import parse_request
from vss_restore.logic.resolve import (
    ALREADY_VERIFIED,
    NOT_VERIFIED,
    OWN_OUTPUT,
    RESTORE,
    SKIP,
    VERIFY,
    decide,
)
from vss_restore.settings import Settings

NOW = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
INSTANCES = ("i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2")
DEVICES = ("sda1", "xvdb")


def _backup(instance: str, device: str, night: int, status: str = tags.VERIFIED) -> dict[str, Any]:
    """The backup of `night` nights ago, as DescribeSnapshots lists it."""
    return {
        "SnapshotId": f"snap-{INSTANCES.index(instance)}{DEVICES.index(device)}{night:015x}",
        "State": "completed",
        "StartTime": NOW - timedelta(days=night, hours=7),
        "Tags": tags.as_list(
            {tags.INSTANCE_ID: instance, tags.DEVICE: device}
            | ({tags.STATUS: status} if status else {})
        ),
    }


def _fleet(nights: int) -> list[dict[str, Any]]:
    return [_backup(i, d, n) for i in INSTANCES for d in DEVICES for n in range(nights)]


def test_the_sample_is_one_older_verified_backup_per_instance_within_the_window() -> None:
    backups = _fleet(nights=60)
    by_id = {b["SnapshotId"]: b for b in backups}

    picks = reverify.sample(backups, NOW, 30, random.Random("x"))

    assert sorted(p.instance_id for p in picks) == sorted(INSTANCES)
    for pick in picks:
        taken = by_id[pick.snapshot_id]["StartTime"]
        assert NOW - timedelta(days=30) <= taken < NOW - timedelta(hours=7), pick
    newest = {b["SnapshotId"] for b in backups if b["StartTime"] == NOW - timedelta(hours=7)}
    assert not newest & {p.snapshot_id for p in picks}


def test_over_many_weeks_every_drive_and_many_nights_are_drawn() -> None:
    backups = _fleet(nights=30)
    drawn = Counter()
    nights = set()
    for week in range(40):
        for pick in reverify.sample(backups, NOW, 30, random.Random(f"week{week}")):
            drawn[(pick.instance_id, pick.device)] += 1
            nights.add(pick.taken)
    assert set(drawn) == {(i, d) for i in INSTANCES for d in DEVICES}
    assert len(nights) > 15  # random within the window, not always the same night


def test_only_verified_completed_backups_older_than_the_drives_newest_are_drawn() -> None:
    instance, device = INSTANCES[0], DEVICES[0]
    newest = _backup(instance, device, 0)
    failed = _backup(instance, device, 1, status=tags.FAILED)
    unjudged = _backup(instance, device, 2, status="")
    pending = {**_backup(instance, device, 3), "State": "pending"}
    too_old = _backup(instance, device, 40)
    backups = [newest, failed, unjudged, pending, too_old]
    assert reverify.sample(backups, NOW, 30, random.Random(1)) == []

    eligible = _backup(instance, device, 4)
    picks = reverify.sample([*backups, eligible], NOW, 30, random.Random(1))
    assert [p.snapshot_id for p in picks] == [eligible["SnapshotId"]]


def test_the_same_day_draws_the_same_sample_so_a_retried_run_starts_nothing_new() -> None:
    backups = _fleet(nights=30)
    first = reverify.sample(backups, NOW, 30, random.Random(reverify.seed(NOW)))
    again = reverify.sample(backups, NOW, 30, random.Random(reverify.seed(NOW)))
    assert first == again
    names = [reverify.execution_name(p, NOW) for p in first]
    assert all(len(n) <= 80 and n.startswith("reverify-snap-") for n in names)


def test_an_on_demand_input_may_ask_for_a_reverification() -> None:
    (request,) = parse_request({"snapshot_id": "snap-0a1b2c3d4e5f60718", "reverify": True})
    assert request.reverify
    with pytest.raises(InvalidRequest, match="reverify must be true or false"):
        parse_request({"snapshot_id": "snap-0a1b2c3d4e5f60718", "reverify": "yes"})


def test_a_reverification_restores_a_verified_snapshot_and_skips_one_never_verified() -> None:
    settings = Settings()
    verified = described(tags={tags.STATUS: tags.VERIFIED})
    assert decide(verified, settings).reason == ALREADY_VERIFIED
    assert decide(verified, settings, reverify=True).action == RESTORE
    unverified = described()
    assert (decide(unverified, settings, reverify=True).action, NOT_VERIFIED) == (
        SKIP,
        decide(unverified, settings, reverify=True).reason,
    )


# --- the workflow's steps in re-verify mode, on a snapshot the night's restore verified ----

NIGHT = "arn:aws:states:us-east-1:123456789012:execution:RestoreStateMachine:night"
NIGHT_VERDICT = {
    tags.STATUS: tags.VERIFIED,
    tags.CHECKED_AT: "2026-11-20T01:10:00Z",
    tags.RESULT_SNAPSHOT: "snap-0c0c0c0c0c0c0c0c0",
    tags.EXECUTION: NIGHT,
    tags.REASON: "reverted to the recorded shadow copy",
}


def _verified_on_the_night(world: Any) -> Ledger:
    boto3.client("ec2").create_tags(Resources=[world.snapshot_id], Tags=tags.as_list(NIGHT_VERDICT))
    ledger = Ledger("vss-restore-unit-Ledger", client=boto3.client("dynamodb"))
    turns.claim_snapshot(ledger, world.snapshot_id, NIGHT)
    ledger.finish(world.snapshot_id, NIGHT, tags.VERIFIED)
    return ledger


def _reverifying(world: Any, name: str) -> dict[str, Any]:
    event = world.event(name)
    event["request"]["reverify"] = True
    return event


def _night_verdict_of(world: Any) -> dict[str, str]:
    return {k: v for k, v in world.snapshot_tags(world.snapshot_id).items() if k in NIGHT_VERDICT}


def test_a_passed_reverification_tags_its_outcome_beside_the_nights_verdict(
    world: Any, lambda_context: Any
) -> None:
    ledger = _verified_on_the_night(world)
    claimed = claim_snapshot.handler(_reverifying(world, "claim_snapshot"), lambda_context)
    assert claimed == {"claimed": True, "reason": ""}

    verdict = record_verdict.handler(_reverifying(world, "record_verdict"), lambda_context)

    assert (verdict["status"], verdict["consistent_snapshot"]) == (tags.VERIFIED, "")
    assert _night_verdict_of(world) == NIGHT_VERDICT
    outcome = world.snapshot_tags(world.snapshot_id)
    assert outcome[tags.REVERIFY_RESULT] == tags.VERIFIED
    assert outcome[tags.REVERIFY_EXECUTION] == world.execution
    assert outcome[tags.REVERIFIED_AT]
    assert ledger.claim_of(world.snapshot_id)["status"] == tags.VERIFIED


def test_a_failed_reverification_alerts_and_leaves_the_nights_verdict(
    world: Any, lambda_context: Any, alert_topic: Any
) -> None:
    ledger = _verified_on_the_night(world)
    claim_snapshot.handler(_reverifying(world, "claim_snapshot"), lambda_context)
    event = _reverifying(world, "clean_up")
    del event["volume"]
    event["error"] = {"Error": "KeyNotUsable", "Cause": "the key is Disabled"}

    result = clean_up.handler(event, lambda_context)

    assert result["status"] == tags.FAILED
    assert _night_verdict_of(world) == NIGHT_VERDICT
    outcome = world.snapshot_tags(world.snapshot_id)
    assert outcome[tags.REVERIFY_RESULT] == tags.FAILED
    assert outcome[tags.REVERIFY_REASON] == "KeyNotUsable: the key is Disabled"
    assert ledger.claim_of(world.snapshot_id)["status"] == tags.VERIFIED
    ((subject, message),) = alert_topic.published()
    assert subject == f"vss-restore: re-verification of {world.snapshot_id} failed (KeyNotUsable)"
    assert "KeyNotUsable: the key is Disabled" in message


def test_a_reverification_that_died_is_released_into_its_own_tags(
    world: Any, lambda_context: Any
) -> None:
    ledger = _verified_on_the_night(world)
    claim_snapshot.handler(_reverifying(world, "claim_snapshot"), lambda_context)

    release_execution.handler(world.event("release_execution"), lambda_context)

    assert _night_verdict_of(world) == NIGHT_VERDICT
    outcome = world.snapshot_tags(world.snapshot_id)
    assert outcome[tags.REVERIFY_RESULT] == tags.FAILED
    assert outcome[tags.REVERIFY_REASON].startswith("ExecutionAborted")
    assert ledger.claim_of(world.snapshot_id)["status"] == tags.VERIFIED


def test_the_weekly_run_needs_the_state_machine_it_starts_restores_on(
    world: Any, sample: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATE_MACHINE_ARN", raising=False)

    with pytest.raises(InvalidRequest, match="STATE_MACHINE_ARN is not set"):
        start_reverifications.handler(sample("start_reverifications"), lambda_context)


def _one_copy(backup: dict[str, Any], *, status: str = tags.VERIFIED) -> dict[str, Any]:
    """The consistent snapshot of `backup`'s night as OneCopy leaves it once the backup is
    gone: our tags, lineage and description, tagged verified by the retention."""
    source = str(backup["SnapshotId"])
    lineage = tags.as_dict(backup["Tags"])
    return {
        "SnapshotId": "snap-c" + source.removeprefix("snap-")[1:],
        "State": "completed",
        "StartTime": backup["StartTime"] + timedelta(hours=1),
        "Description": CONSISTENT_DESCRIPTION.format(source=source),
        "Tags": tags.as_list(
            {
                tags.RESOURCE: tags.CONSISTENT_SNAPSHOT,
                tags.SOURCE_SNAPSHOT: source,
                tags.INSTANCE_ID: lineage[tags.INSTANCE_ID],
                tags.DEVICE: lineage[tags.DEVICE],
                tags.BACKUP_TIME: backup["StartTime"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            | ({tags.STATUS: status} if status else {})
        ),
    }


def test_one_copy_nights_are_drawn_through_their_consistent_snapshot_never_the_newest() -> None:
    # Given one drive whose older nights kept only their consistent snapshot (OneCopy), the
    # newest night both,
    instance, device = INSTANCES[0], DEVICES[1]
    nights = [_backup(instance, device, n) for n in range(10)]
    newest, older = nights[0], nights[1:]
    consistent = [_one_copy(b) for b in nights]
    by_id = {c["SnapshotId"]: c for c in consistent}
    # when many weeks draw,
    drawn = {
        pick.snapshot_id
        for week in range(60)
        for pick in reverify.sample([newest], NOW, 30, random.Random(week), consistent=consistent)
    }
    # then every pick is an older night's consistent snapshot (dated by its night), never
    # the newest night's backup nor its consistent snapshot (whose backup is still there),
    assert drawn <= {c["SnapshotId"] for c in consistent[1:]}
    assert len(drawn) > 5
    (pick,) = reverify.sample([newest], NOW, 30, random.Random(1), consistent=consistent)
    source = tags.as_dict(by_id[pick.snapshot_id]["Tags"])[tags.SOURCE_SNAPSHOT]
    assert pick.taken == next(b["StartTime"] for b in older if b["SnapshotId"] == source)
    assert (pick.instance_id, pick.device) == (instance, device)


def test_a_consistent_snapshot_is_not_drawn_while_its_backup_is_there_or_unverified() -> None:
    instance, device = INSTANCES[0], DEVICES[0]
    newest, older = _backup(instance, device, 0), _backup(instance, device, 3)
    # Its backup still listed: the night is drawn as the backup.
    picks = reverify.sample(
        [newest, older], NOW, 30, random.Random(1), consistent=[_one_copy(older)]
    )
    assert [p.snapshot_id for p in picks] == [older["SnapshotId"]]
    # Not tagged verified, still pending, or out of the window: never drawn.
    for candidate in (
        _one_copy(older, status=""),
        {**_one_copy(older), "State": "pending"},
        _one_copy(_backup(instance, device, 40)),
    ):
        assert reverify.sample([newest], NOW, 30, random.Random(1), consistent=[candidate]) == []


def test_a_reverification_of_our_verified_consistent_snapshot_only_checks_it() -> None:
    backup = _backup(INSTANCES[0], DEVICES[1], 3)
    consistent = {**_one_copy(backup), "VolumeSize": 50, "Encrypted": False}

    decision = decide(consistent, Settings(), reverify=True)

    # Inspect and check, no revert and no new snapshot (the workflow's "verify" path), with
    # the drive and night from its lineage.
    assert (decision.action, decision.check, decision.shadow_copy_id) == (VERIFY, True, "")
    assert (decision.instance_id, decision.device) == (INSTANCES[0], DEVICES[1])
    assert decision.backup_time == backup["StartTime"].strftime("%Y-%m-%dT%H:%M:%SZ")
    # Outside a re-verification it stays the workflow's own output, never restored;
    assert decide(consistent, Settings()).reason == OWN_OUTPUT
    # and one not verified, or with our tags but another description (not ours), is skipped.
    for other in (
        _one_copy(backup, status=""),
        {**consistent, "Description": "production snapshot"},
    ):
        assert (decide(other, Settings(), reverify=True).action, OWN_OUTPUT) == (
            SKIP,
            decide(other, Settings(), reverify=True).reason,
        )
