"""Handlers read_request and resolve_snapshot: what is restored, what is skipped and why."""

import time
from typing import Any

import pytest

from vss_restore import tags
from vss_restore.aws.ledger import Ledger, Waiting, consistent_key
from vss_restore.errors import InvalidRequest, SnapshotNotFound
from vss_restore.handlers import read_request, resolve_snapshot
from vss_restore.settings import Settings

from .conftest import LEDGER_TABLE

VSS = Settings()  # the stack's default VSS tag


def test_a_completed_snapshot_event_becomes_one_restore(sample: Any, lambda_context: Any) -> None:
    result = read_request.handler(sample("snapshot-completed"), lambda_context)

    assert result == {
        "restores": [
            {
                "snapshot_id": "snap-0a1b2c3d4e5f60718",
                "helper_instance_id": "",
                "keep_volume": False,
                "reverify": False,
            }
        ]
    }


def test_a_multi_volume_event_becomes_one_restore_per_snapshot(
    sample: Any, lambda_context: Any
) -> None:
    result = read_request.handler(sample("multi-volume-snapshots-completed"), lambda_context)

    assert [r["snapshot_id"] for r in result["restores"]] == [
        "snap-0a1b2c3d4e5f60718",
        "snap-0b2c3d4e5f6071829",
    ]


def test_an_on_demand_input_becomes_a_restore_on_the_named_helper(
    sample: Any, lambda_context: Any
) -> None:
    result = read_request.handler(sample("on-demand"), lambda_context)

    assert result["restores"] == [
        {
            "snapshot_id": "snap-0a1b2c3d4e5f60718",
            "helper_instance_id": "i-0abc1234def567890",
            "keep_volume": False,
            "reverify": False,
        }
    ]


def test_a_malformed_input_fails_the_step_with_invalid_request(
    sample: Any, lambda_context: Any
) -> None:
    event = sample("on-demand")
    event["snapshot"] = event.pop("snapshot_id")

    with pytest.raises(InvalidRequest, match="unknown input fields: snapshot"):
        read_request.handler(event, lambda_context)


def test_a_vss_snapshot_is_resolved_for_restore_with_what_the_backup_recorded(
    world: Any, lambda_context: Any
) -> None:
    event = world.event("resolve_snapshot")

    decision = resolve_snapshot.handler(event, lambda_context)

    source = world.event("prepare_helper")["source"]
    assert decision["action"] == "restore"
    assert decision["snapshot_id"] == world.snapshot_id
    assert decision["source_volume_id"] == world.source_volume_id
    assert decision["shadow_copy_id"] == source["shadow_copy_id"]
    assert decision["shadow_set_id"] == source["shadow_set_id"]
    assert decision["instance_id"] == source["instance_id"]


def test_a_snapshot_made_by_the_workflow_is_skipped_as_its_own_output(
    world: Any, lambda_context: Any, emitted_metrics: Any
) -> None:
    volume_id = world.temporary_volume()
    ours = world.ec2.create_snapshot(
        VolumeId=volume_id,
        TagSpecifications=[
            {
                "ResourceType": "snapshot",
                "Tags": tags.as_list(
                    {
                        tags.RESOURCE: tags.CONSISTENT_SNAPSHOT,
                        tags.SOURCE_SNAPSHOT: world.snapshot_id,
                        VSS.vss_tag_key: VSS.vss_tag_value,
                    }
                ),
            }
        ],
    )["SnapshotId"]
    event = world.event("resolve_snapshot")
    event["request"]["snapshot_id"] = ours

    decision = resolve_snapshot.handler(event, lambda_context)

    assert (decision["action"], decision["reason"]) == ("skip", "made-by-vss-restore")
    assert "RestoreSkipped" in emitted_metrics()


def test_a_snapshot_without_the_vss_tag_is_skipped(world: Any, lambda_context: Any) -> None:
    plain = world.ec2.create_snapshot(VolumeId=world.source_volume_id)["SnapshotId"]
    event = world.event("resolve_snapshot")
    event["request"]["snapshot_id"] = plain

    decision = resolve_snapshot.handler(event, lambda_context)

    assert (decision["action"], decision["reason"]) == ("skip", "not-vss-tagged")


def test_the_vss_tag_is_read_from_the_stack_settings(
    world: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VSS_TAG_KEY", "Backup")
    monkeypatch.setenv("VSS_TAG_VALUE", "NightlyVSS")
    world.ec2.create_tags(
        Resources=[world.snapshot_id], Tags=[{"Key": "Backup", "Value": "NightlyVSS"}]
    )
    untagged = world.ec2.create_snapshot(VolumeId=world.source_volume_id)["SnapshotId"]

    restored = resolve_snapshot.handler(world.event("resolve_snapshot"), lambda_context)
    event = world.event("resolve_snapshot")
    event["request"]["snapshot_id"] = untagged
    skipped = resolve_snapshot.handler(event, lambda_context)

    assert restored["action"] == "restore"
    assert skipped["reason"] == "not-vss-tagged"


def test_a_snapshot_that_does_not_exist_fails_with_snapshot_not_found(
    world: Any, lambda_context: Any
) -> None:
    event = world.event("resolve_snapshot")
    event["request"]["snapshot_id"] = "snap-0ffffffffffffffff"

    with pytest.raises(SnapshotNotFound, match="snap-0ffffffffffffffff"):
        resolve_snapshot.handler(event, lambda_context)


def test_our_consistent_snapshot_deleted_while_pending_is_skipped_when_its_event_comes(
    world: Any, lambda_context: Any, emitted_metrics: Any
) -> None:
    # Given the record our snapshot step kept for it, and the snapshot gone (a failed
    # restore's cleanup deleted it while pending; EBS deleted it once completed),
    gone = "snap-0ffffffffffffffff"
    Ledger(LEDGER_TABLE).wait_for(
        consistent_key(gone),
        Waiting("spent-token", "arn:aws:states:::execution:m:e", gone, "2026-12-06T02:00:00Z"),
        int(time.time()),
    )
    event = world.event("resolve_snapshot")
    event["request"]["snapshot_id"] = gone

    # when its completion event resolves it, it is skipped: no restore, no failure.
    decision = resolve_snapshot.handler(event, lambda_context)

    assert (decision["action"], decision["reason"]) == ("skip", "made-by-vss-restore-and-deleted")
    assert "RestoreSkipped" in emitted_metrics()


def test_a_malformed_snapshot_id_in_the_state_is_refused_before_any_call(
    world: Any, lambda_context: Any
) -> None:
    event = world.event("resolve_snapshot")
    event["request"]["snapshot_id"] = "snap-; Remove-Item"

    with pytest.raises(InvalidRequest, match=r"request\.snapshot_id"):
        resolve_snapshot.handler(event, lambda_context)
