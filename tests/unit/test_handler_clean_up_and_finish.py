"""Handlers clean_up (the failure path) and finish (the execution's outcome)."""

import json
from typing import Any

import pytest

from vss_restore import tags
from vss_restore.aws.ec2 import CONSISTENT_DESCRIPTION
from vss_restore.aws.ledger import Ledger, consistent_key
from vss_restore.errors import CleanupPending, InvalidRequest, RestoreFailed
from vss_restore.handlers import clean_up, finish

from .conftest import LEDGER_TABLE


def _attachments(world: Any, volume_id: str) -> list[dict[str, Any]]:
    return list(world.volume(volume_id)["Attachments"])


def test_our_attached_volume_is_force_detached_and_the_cleanup_waits_for_it(
    world: Any, lambda_context: Any, detaches: list[dict[str, Any]]
) -> None:
    volume_id = world.temporary_volume()
    world.attach(volume_id, "xvdf")

    with pytest.raises(CleanupPending, match=f"{volume_id} is in-use, waiting to delete it"):
        clean_up.handler(world.event("clean_up", volume=volume_id), lambda_context)

    assert detaches == [{"VolumeId": volume_id, "InstanceId": world.helper_id, "Force": True}]
    assert world.volume(volume_id) is not None


def test_once_detached_our_volume_is_deleted_and_the_snapshot_marked_failed(
    world: Any, lambda_context: Any
) -> None:
    volume_id = world.temporary_volume()
    world.attach(volume_id, "xvdf")
    event = world.event("clean_up", volume=volume_id)
    with pytest.raises(CleanupPending):
        clean_up.handler(event, lambda_context)

    verdict = clean_up.handler(event, lambda_context)  # the Retry, after moto's detach

    assert world.volume(volume_id) is None
    reason = f"RevertFailed: Revert of {volume_id}: VSS_E_OBJECT_NOT_FOUND"
    marked = world.snapshot_tags(world.snapshot_id)
    assert marked[tags.STATUS] == tags.FAILED
    assert marked[tags.REASON] == reason
    assert marked[tags.RESULT_SNAPSHOT] == "none"
    assert marked[tags.EXECUTION] == event["execution"]
    assert tags.CHECKED_AT in marked
    assert verdict == {
        "snapshot_id": world.snapshot_id,
        "status": "failed",
        "reason": reason,
        "consistent_snapshot": "",
        "shadow_copies_reverted": [],
        "rule": "none",
        "volumes": [],
    }
    assert (marked[tags.RULE], marked[tags.VOLUMES]) == ("none", "")


def test_a_restore_failed_after_its_plan_says_the_rule_and_each_volume(
    world: Any, lambda_context: Any, alert_topic: Any
) -> None:
    # The Revert failed: its plan and the Inspect are in the state, no Revert report.
    event = world.event("record_verdict", volume=world.temporary_volume())
    del event["progress"]["revert"], event["progress"]["check"], event["consistent"]
    event["error"] = world.event("clean_up")["error"]

    verdict = clean_up.handler(event, lambda_context)

    marked = world.snapshot_tags(world.snapshot_id)
    assert marked[tags.STATUS] == tags.FAILED
    assert marked[tags.RULE] == "recorded-shadow-copy-id"
    assert marked[tags.VOLUMES] == "D: NOT reverted"
    assert [(v["drive"], v["done"]) for v in verdict["volumes"]] == [("D", "not-reverted")]
    [(_, message)] = alert_topic.published()
    assert "Rule:       recorded-shadow-copy-id: the shadow copy IDs the backup recorded" in message
    assert (
        "  D:            NTFS   not reverted {6f1e0e7a-1111-4c5d-9e8f-000000000001} of "
        "2026-11-25T00:00:05Z"
    ) in message


def test_a_detached_volume_of_ours_is_deleted_at_once(world: Any, lambda_context: Any) -> None:
    volume_id = world.temporary_volume()

    clean_up.handler(world.event("clean_up", volume=volume_id), lambda_context)

    assert world.volume(volume_id) is None


def test_a_volume_of_ours_in_the_error_state_is_deleted(world: Any, lambda_context: Any) -> None:
    volume_id = world.temporary_volume()
    world.set_volume_state(volume_id, "error")

    clean_up.handler(world.event("clean_up", volume=volume_id), lambda_context)

    assert world.volume(volume_id) is None


@pytest.mark.parametrize(
    "volume_tags",
    [
        {"Name": "the file server's data disk"},
        {tags.RESOURCE: tags.TEMPORARY_VOLUME, tags.SOURCE_SNAPSHOT: "snap-0ffffffffffffffff"},
    ],
    ids=["not-ours", "of-another-snapshot"],
)
def test_a_volume_that_is_not_ours_is_left_attached_and_the_snapshot_still_marked_failed(
    world: Any, lambda_context: Any, volume_tags: dict[str, str]
) -> None:
    volume_id = world.temporary_volume(volume_tags=volume_tags)
    world.attach(volume_id, "xvdf")

    verdict = clean_up.handler(world.event("clean_up", volume=volume_id), lambda_context)

    [attachment] = _attachments(world, volume_id)
    assert (attachment["InstanceId"], attachment["State"]) == (world.helper_id, "attached")
    assert world.snapshot_tags(world.snapshot_id)[tags.STATUS] == tags.FAILED
    assert verdict["status"] == "failed"


def test_a_failure_before_any_volume_only_marks_the_snapshot_failed(
    world: Any, lambda_context: Any
) -> None:
    event = world.event("clean_up")
    del event["volume"]
    event["error"] = {
        "Error": "HelperNotUsable",
        "Cause": json.dumps(
            {"errorType": "HelperNotUsable", "errorMessage": "helper i-0abc is stopped"}
        ),
    }

    verdict = clean_up.handler(event, lambda_context)

    assert verdict["reason"] == "HelperNotUsable: helper i-0abc is stopped"
    assert world.snapshot_tags(world.snapshot_id)[tags.REASON] == verdict["reason"]


def test_a_volume_made_by_a_create_that_failed_while_waiting_for_it_is_found_and_removed(
    world: Any, lambda_context: Any
) -> None:
    ours = world.temporary_volume()
    of_another_snapshot = world.temporary_volume(source="snap-0ffffffffffffffff")
    of_another_execution = world.temporary_volume(execution=world.execution + "-2")
    event = world.event("clean_up")
    del event["volume"]  # the create raised after CreateVolume: the state has no volume
    event["error"] = {"Error": "VolumeFailed", "Cause": f"{ours} is in the error state"}

    clean_up.handler(event, lambda_context)

    assert world.volume(ours) is None
    assert world.volume(of_another_snapshot) is not None
    assert world.volume(of_another_execution) is not None


def test_a_volume_already_gone_is_not_an_error(world: Any, lambda_context: Any) -> None:
    verdict = clean_up.handler(
        world.event("clean_up", volume="vol-0ffffffffffffffff"), lambda_context
    )

    assert verdict["status"] == "failed"


def test_a_state_machine_error_with_a_plain_text_cause_is_kept_as_the_reason(
    world: Any, lambda_context: Any
) -> None:
    event = world.event("clean_up")
    del event["volume"]
    event["error"] = {"Error": "States.Timeout", "Cause": "Task timed out after 60 s"}

    verdict = clean_up.handler(event, lambda_context)

    assert verdict["reason"] == "States.Timeout: Task timed out after 60 s"


def test_a_failure_while_resolving_does_not_tag_the_snapshot(
    world: Any, lambda_context: Any
) -> None:
    event = world.event("clean_up")
    del event["volume"], event["source"]
    event["error"] = {"Error": "SnapshotNotFound", "Cause": "{}"}

    verdict = clean_up.handler(event, lambda_context)

    assert verdict["status"] == "failed"
    assert tags.STATUS not in world.snapshot_tags(world.snapshot_id)


def test_a_long_reason_is_cut_to_fit_a_tag(world: Any, lambda_context: Any) -> None:
    event = world.event("clean_up")
    del event["volume"]
    event["error"] = {"Error": "RevertFailed", "Cause": "x" * 5000}

    clean_up.handler(event, lambda_context)

    assert 0 < len(world.snapshot_tags(world.snapshot_id)[tags.REASON]) <= 256


# --- finish ----------------------------------------------------------------------------


def test_an_execution_with_every_snapshot_verified_returns_the_verdicts(
    sample: Any, lambda_context: Any
) -> None:
    event = sample("finish")

    assert finish.handler(event, lambda_context) == {"verdicts": event["verdicts"]}


def test_skipped_snapshots_do_not_fail_the_execution(sample: Any, lambda_context: Any) -> None:
    event = sample("finish")
    event["verdicts"].append(
        {"snapshot_id": "snap-0b2c3d4e5f6071829", "status": "skipped", "reason": "not-vss-tagged"}
    )

    assert len(finish.handler(event, lambda_context)["verdicts"]) == 2


def test_an_execution_with_a_failed_restore_fails_listing_the_failures(
    sample: Any, lambda_context: Any
) -> None:
    event = sample("finish")
    failed = {
        "snapshot_id": "snap-0b2c3d4e5f6071829",
        "status": "failed",
        "reason": "RevertFailed: VSS_E_OBJECT_NOT_FOUND",
        "consistent_snapshot": "",
        "shadow_copies_reverted": [],
    }
    event["verdicts"].append(failed)

    with pytest.raises(RestoreFailed) as failure:
        finish.handler(event, lambda_context)

    cause = json.loads(str(failure.value))
    assert cause["failed"] == [failed]
    assert cause["verdicts"] == event["verdicts"]


def test_an_execution_without_verdicts_is_refused(sample: Any, lambda_context: Any) -> None:
    event = sample("finish")
    del event["verdicts"]

    with pytest.raises(InvalidRequest, match="'verdicts'"):
        finish.handler(event, lambda_context)


# --- the alert -------------------------------------------------------------------------


def test_a_failed_restore_alerts_with_the_snapshot_the_error_and_the_execution(
    world: Any, lambda_context: Any, alert_topic: Any
) -> None:
    volume_id = world.temporary_volume()
    event = world.event("clean_up", volume=volume_id)

    clean_up.handler(event, lambda_context)

    [(subject, message)] = alert_topic.published()
    assert subject == f"vss-restore: {world.snapshot_id} failed (RevertFailed)"
    assert f"Snapshot:   {world.snapshot_id}" in message
    assert "VSS_E_OBJECT_NOT_FOUND" in message
    assert f"{volume_id} (removed)" in message
    assert "console.aws.amazon.com/states/home?region=us-east-1" in message
    assert event["execution"] in message


def test_a_cleanup_still_waiting_for_the_detach_does_not_alert_yet(
    world: Any, lambda_context: Any, alert_topic: Any
) -> None:
    volume_id = world.temporary_volume()
    world.attach(volume_id, "xvdf")

    with pytest.raises(CleanupPending):
        clean_up.handler(world.event("clean_up", volume=volume_id), lambda_context)

    assert alert_topic.published() == []


def test_a_late_failure_deletes_the_consistent_snapshot_it_made_and_says_so(
    world: Any, lambda_context: Any
) -> None:
    # Given a restore whose consistent snapshot exists (completed: moto completes at once)
    # when its verdict's last step fails, and a consistent snapshot of another execution,
    event = world.event("clean_up")
    made = _consistent_snapshot(world, event["execution"])
    other = _consistent_snapshot(world, "arn:aws:states:us-east-1:123456789012:execution:x:y")

    verdict = clean_up.handler(event, lambda_context)

    # then its own goes, named in the verdict and the tag; the other execution's stays.
    assert verdict["consistent_snapshots_deleted"] == [made]
    assert verdict["reason"].endswith(f"; consistent snapshot {made} deleted")
    assert world.snapshot_tags(world.snapshot_id)[tags.REASON] == verdict["reason"]
    left = {s["SnapshotId"] for s in world.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert made not in left
    assert other in left


def test_a_pending_consistent_snapshot_is_deleted_at_once_and_the_verdict_says_when(
    world: Any, lambda_context: Any
) -> None:
    # EBS accepts the deletion of a pending snapshot and carries it out once it completes
    # (the simulator models that: tests/simulator/test_late_failure.py); moto deletes at once.
    event = world.event("clean_up")
    made = _consistent_snapshot(world, event["execution"])
    world.backend.snapshots[made].status = "pending"

    verdict = clean_up.handler(event, lambda_context)

    assert verdict["consistent_snapshots_deleted"] == [made]
    assert verdict["consistent_snapshots_pending"] == [made]
    assert verdict["reason"].endswith(
        f"; consistent snapshot {made} deleted (takes effect when it completes)"
    )
    assert world.snapshot_tags(world.snapshot_id)[tags.REASON] == verdict["reason"]
    left = {s["SnapshotId"] for s in world.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert made not in left
    # Its record in the ledger, no task waiting on it: its later event is known for ours.
    recorded = Ledger(LEDGER_TABLE).waiting(consistent_key(made))
    assert recorded is not None
    assert (recorded.token, recorded.execution, recorded.operation) == (
        "",
        event["execution"],
        made,
    )


def test_a_snapshot_given_our_tags_without_our_description_is_not_deleted(
    world: Any, lambda_context: Any
) -> None:
    # Tags can be written by anyone with ec2:CreateTags; a description is set at creation.
    event = world.event("clean_up")
    foreign = _consistent_snapshot(world, event["execution"], description="production D:")

    verdict = clean_up.handler(event, lambda_context)

    assert "consistent_snapshots_deleted" not in verdict
    assert "consistent snapshot" not in verdict["reason"]
    left = {s["SnapshotId"] for s in world.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert foreign in left


def _consistent_snapshot(world: Any, execution: str, description: str = "") -> str:
    return str(
        world.ec2.create_snapshot(
            VolumeId=world.source_volume_id,
            Description=description or CONSISTENT_DESCRIPTION.format(source=world.snapshot_id),
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": tags.as_list(
                        {
                            tags.RESOURCE: tags.CONSISTENT_SNAPSHOT,
                            tags.SOURCE_SNAPSHOT: world.snapshot_id,
                            tags.EXECUTION: execution,
                        }
                    ),
                }
            ],
        )["SnapshotId"]
    )
