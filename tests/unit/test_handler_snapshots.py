"""Handlers snapshot_volume, snapshot_state and record_verdict: the consistent snapshot."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.unit.conftest import LEDGER_TABLE
from vss_restore import tags
from vss_restore.aws.ledger import Ledger
from vss_restore.errors import SnapshotNotFound, VolumeFailed, VolumeNotReverted
from vss_restore.handlers import record_verdict, resolve_snapshot, snapshot_state, snapshot_volume
from vss_restore.settings import Settings

VSS = Settings()  # the stack's default VSS tag


def _consistent_snapshots(world: Any) -> list[dict[str, Any]]:
    return list(
        world.ec2.describe_snapshots(
            OwnerIds=["self"],
            Filters=[{"Name": f"tag:{tags.SOURCE_SNAPSHOT}", "Values": [world.snapshot_id]}],
        )["Snapshots"]
    )


# --- snapshot_volume -------------------------------------------------------------------


def test_the_reverted_volume_is_snapshotted_and_tagged_as_our_consistent_snapshot(
    world: Any, lambda_context: Any
) -> None:
    volume_id = world.temporary_volume()
    event = world.event("snapshot_volume", volume=volume_id)

    result = snapshot_volume.handler(event, lambda_context)

    [made] = _consistent_snapshots(world)
    assert made["SnapshotId"] == result["snapshot_id"]
    assert made["VolumeId"] == volume_id
    made_tags = tags.as_dict(made["Tags"])
    assert made_tags[tags.RESOURCE] == tags.CONSISTENT_SNAPSHOT
    assert made_tags[tags.SOURCE_SNAPSHOT] == world.snapshot_id
    assert made_tags[tags.EXECUTION] == event["execution"]
    assert made_tags[tags.SHADOW_COPY_ID] == ",".join(event["plan"]["shadow_copy_ids"])


def test_the_consistent_snapshot_does_not_carry_the_vss_marker(
    world: Any, lambda_context: Any
) -> None:
    event = world.event("snapshot_volume", volume=world.temporary_volume())

    snapshot_volume.handler(event, lambda_context)

    [made] = _consistent_snapshots(world)
    assert VSS.vss_tag_key not in tags.as_dict(made["Tags"])


def test_the_consistent_snapshot_never_triggers_another_restore(
    world: Any, lambda_context: Any
) -> None:
    made = snapshot_volume.handler(
        world.event("snapshot_volume", volume=world.temporary_volume()), lambda_context
    )
    event = world.event("resolve_snapshot")
    event["request"]["snapshot_id"] = made["snapshot_id"]

    decision = resolve_snapshot.handler(event, lambda_context)

    assert (decision["action"], decision["reason"]) == ("skip", "made-by-vss-restore")


def test_a_second_call_in_the_same_execution_returns_the_same_snapshot_and_makes_no_other(
    world: Any, lambda_context: Any
) -> None:
    event = world.event("snapshot_volume", volume=world.temporary_volume())
    first = snapshot_volume.handler(event, lambda_context)

    again = snapshot_volume.handler(event, lambda_context)

    assert again == first
    assert len(_consistent_snapshots(world)) == 1


def test_another_execution_makes_its_own_consistent_snapshot(
    world: Any, lambda_context: Any
) -> None:
    event = world.event("snapshot_volume", volume=world.temporary_volume())
    first = snapshot_volume.handler(event, lambda_context)
    event["execution"] += "-rerun"

    second = snapshot_volume.handler(event, lambda_context)

    assert second != first
    assert len(_consistent_snapshots(world)) == 2


# --- snapshot_state --------------------------------------------------------------------


def test_the_consistent_snapshot_is_completed_on_the_first_look(
    world: Any, lambda_context: Any
) -> None:
    made = world.ec2.create_snapshot(VolumeId=world.temporary_volume())["SnapshotId"]

    progress = snapshot_state.handler(
        world.event("snapshot_state", consistent=made), lambda_context
    )

    assert (progress["ready"], progress["attempt"], progress["wait_seconds"]) == (True, 1, 0)


def test_a_pending_snapshot_is_looked_at_again_with_the_wait_started_before(
    world: Any, lambda_context: Any
) -> None:
    made = world.ec2.create_snapshot(VolumeId=world.temporary_volume())["SnapshotId"]
    world.backend.get_snapshot(made).status = "pending"
    started = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = world.event("snapshot_state", consistent=made)
    event["progress"]["snapshot_completed"] = {
        "ready": False,
        "attempt": 2,
        "since": started,
        "wait_seconds": 30,
    }

    progress = snapshot_state.handler(event, lambda_context)

    assert (progress["ready"], progress["attempt"], progress["since"]) == (False, 3, started)
    assert progress["wait_seconds"] > 30


def test_a_consistent_snapshot_in_the_error_state_fails_the_restore(
    world: Any, lambda_context: Any
) -> None:
    made = world.ec2.create_snapshot(VolumeId=world.temporary_volume())["SnapshotId"]
    world.backend.get_snapshot(made).status = "error"

    with pytest.raises(VolumeFailed, match=f"the consistent snapshot {made} failed"):
        snapshot_state.handler(world.event("snapshot_state", consistent=made), lambda_context)


def test_a_consistent_snapshot_that_vanished_fails_with_snapshot_not_found(
    world: Any, lambda_context: Any
) -> None:
    with pytest.raises(SnapshotNotFound):
        snapshot_state.handler(
            world.event("snapshot_state", consistent="snap-0ffffffffffffffff"), lambda_context
        )


# --- record_verdict --------------------------------------------------------------------


def test_the_source_snapshot_is_tagged_verified_with_its_consistent_snapshot(
    world: Any, lambda_context: Any
) -> None:
    consistent = world.ec2.create_snapshot(VolumeId=world.temporary_volume())["SnapshotId"]
    event = world.event("record_verdict", consistent=consistent)
    before = datetime.now(UTC).replace(microsecond=0)

    record_verdict.handler(event, lambda_context)

    verdict = world.snapshot_tags(world.snapshot_id)
    assert verdict[tags.STATUS] == tags.VERIFIED
    assert verdict[tags.RESULT_SNAPSHOT] == consistent
    assert verdict[tags.EXECUTION] == event["execution"]
    checked_at = datetime.strptime(verdict[tags.CHECKED_AT], "%Y-%m-%dT%H:%M:%SZ")
    assert before <= checked_at.replace(tzinfo=UTC) <= datetime.now(UTC)
    # The backup's own tags stay.
    assert verdict[VSS.vss_tag_key] == VSS.vss_tag_value


def test_the_verdict_says_what_was_reverted_and_by_which_rule(
    world: Any, lambda_context: Any
) -> None:
    consistent = world.ec2.create_snapshot(VolumeId=world.temporary_volume())["SnapshotId"]
    event = world.event("record_verdict", consistent=consistent)
    shadow = event["plan"]["shadow_copy_ids"][0]

    verdict = record_verdict.handler(event, lambda_context)

    assert verdict == {
        "snapshot_id": world.snapshot_id,
        "status": "verified",
        "reason": "",
        "consistent_snapshot": consistent,
        "shadow_copies_reverted": [shadow],
        "rule": "recorded-shadow-copy-id",
        "rule_weaker": False,
        "rule_means": "the shadow copy IDs the backup recorded",
        "drive_letters": "D",
        "volumes": [
            {
                "partition": 2,
                "drive": "D",
                "file_system": "NTFS",
                "done": "reverted-recorded",
                "what_was_done": "reverted to the recorded shadow copy",
                "shadow_copy_id": shadow,
                "shadow_copy_date": "2026-11-25T00:00:05Z",
                "finding": "NoErrorsFound",
                "passed": True,
            }
        ],
        "volume_kept": "",
    }
    marked = world.snapshot_tags(world.snapshot_id)
    assert marked[tags.RULE] == "recorded-shadow-copy-id"
    assert marked[tags.VOLUMES] == "D: recorded copy, NoErrorsFound"
    assert marked[tags.REASON] == (
        "reverted to the shadow copies the backup recorded; the restored disk passed its check"
    )


def test_the_ledger_keeps_the_verdict_volume_by_volume(world: Any, lambda_context: Any) -> None:
    consistent = world.ec2.create_snapshot(VolumeId=world.temporary_volume())["SnapshotId"]
    event = world.event("record_verdict", consistent=consistent)
    ledger = Ledger(LEDGER_TABLE, client=boto3.client("dynamodb"))
    ledger.claim(world.snapshot_id, event["execution"], now=0, lease_seconds=86400)

    verdict = record_verdict.handler(event, lambda_context)

    kept = (
        boto3.resource("dynamodb")
        .Table(LEDGER_TABLE)
        .get_item(Key={"pk": f"snapshot#{world.snapshot_id}"})["Item"]
    )
    assert kept["status"] == "verified"
    assert kept["verdict"]["rule"] == "recorded-shadow-copy-id"
    assert [(v["drive"], v["done"], v["finding"]) for v in kept["verdict"]["volumes"]] == [
        (v["drive"], v["done"], v["finding"]) for v in verdict["volumes"]
    ]


def test_a_shadowed_volume_the_revert_report_does_not_list_is_never_verified(
    world: Any, lambda_context: Any
) -> None:
    consistent = world.ec2.create_snapshot(VolumeId=world.temporary_volume())["SnapshotId"]
    event = world.event("record_verdict", consistent=consistent)
    event["progress"]["revert"]["report"]["reverted"] = []

    with pytest.raises(VolumeNotReverted, match=r"D: \(shadow copy \{6f1e0e7a"):
        record_verdict.handler(event, lambda_context)

    assert tags.STATUS not in world.snapshot_tags(world.snapshot_id)


def test_a_kept_volume_is_named_in_the_verdict(world: Any, lambda_context: Any) -> None:
    volume_id = world.temporary_volume()
    consistent = world.ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    event = world.event("record_verdict", volume=volume_id, consistent=consistent)
    event["request"]["keep_volume"] = True

    verdict = record_verdict.handler(event, lambda_context)

    assert verdict["volume_kept"] == volume_id


def test_a_verified_snapshot_is_skipped_by_the_next_run(world: Any, lambda_context: Any) -> None:
    consistent = world.ec2.create_snapshot(VolumeId=world.temporary_volume())["SnapshotId"]
    record_verdict.handler(world.event("record_verdict", consistent=consistent), lambda_context)

    decision = resolve_snapshot.handler(world.event("resolve_snapshot"), lambda_context)

    assert (decision["action"], decision["reason"]) == ("skip", "already-verified")


def test_a_verify_only_snapshot_is_its_own_consistent_snapshot(
    world: Any, lambda_context: Any
) -> None:
    event = world.event("record_verdict")
    event["source"]["action"] = "verify"
    del event["plan"], event["consistent"]

    verdict = record_verdict.handler(event, lambda_context)

    assert verdict["consistent_snapshot"] == world.snapshot_id
    assert verdict["shadow_copies_reverted"] == []
    assert verdict["rule"].startswith("verify-only")
    source = world.snapshot_tags(world.snapshot_id)
    assert source[tags.STATUS] == tags.VERIFIED
    assert source[tags.RESULT_SNAPSHOT] == world.snapshot_id
    assert "passed its check" in source[tags.REASON]


def test_a_verified_restore_reports_how_long_it_took(
    world: Any, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    consistent = world.ec2.create_snapshot(VolumeId=world.temporary_volume())["SnapshotId"]
    event = world.event("record_verdict", consistent=consistent)
    event["source"]["started_at"] = (datetime.now(UTC) - timedelta(minutes=10)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )

    record_verdict.handler(event, lambda_context)

    emitted = {}
    for line in capsys.readouterr().out.splitlines():
        if '"_aws"' in line:
            emitted.update(json.loads(line))
    assert emitted["RestoreVerified"] == [1.0]
    [took] = emitted["RestoreDuration"]
    assert 600 <= took < 660
