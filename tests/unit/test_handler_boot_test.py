"""Handler boot_test: a step of the boot test, or its clean-up (docs/boot-test.md)."""

from typing import Any

import pytest

from vss_restore import tags
from vss_restore.errors import CleanupPending, InvalidRequest
from vss_restore.handlers import boot_test
from vss_restore.logic import boot_test as logic

IMAGE = "ami-0123456789abcdef0"


def test_with_boot_test_off_the_step_refuses_and_launches_nothing(
    world: Any, lambda_context: Any
) -> None:
    made = world.ec2.create_snapshot(VolumeId=world.temporary_volume())["SnapshotId"]
    with pytest.raises(InvalidRequest, match="the boot test is off"):
        boot_test.handler(world.event("boot_test", consistent=made), lambda_context)


def test_the_clean_up_after_a_recorded_test_touches_nothing(
    world: Any, lambda_context: Any
) -> None:
    made = world.ec2.create_snapshot(VolumeId=world.temporary_volume())["SnapshotId"]
    found = boot_test.handler(world.event("clean_up_boot_test", consistent=made), lambda_context)
    assert (found["done"], found["result"]) == (True, "skipped")
    assert not world.ec2.describe_snapshots(SnapshotIds=[made])["Snapshots"][0].get("Tags")


def _launch(world: Any, instance_tags: dict[str, str]) -> str:
    return str(
        world.ec2.run_instances(
            ImageId=IMAGE,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": tags.as_list(instance_tags)},
                {"ResourceType": "volume", "Tags": tags.as_list(instance_tags)},
            ],
        )["Instances"][0]["InstanceId"]
    )


def test_after_a_failed_step_the_clone_goes_the_failure_is_recorded_and_production_stays(
    world: Any, lambda_context: Any
) -> None:
    event = world.event("clean_up_boot_test")
    execution = event["execution"]
    made = world.ec2.create_snapshot(
        VolumeId=world.temporary_volume(),
        TagSpecifications=[
            {
                "ResourceType": "snapshot",
                "Tags": tags.as_list({tags.RESOURCE: tags.CONSISTENT_SNAPSHOT}),
            }
        ],
    )["SnapshotId"]
    clone = _launch(world, logic.instance_tags(execution, made))
    another_executions = _launch(world, logic.instance_tags("arn:another", made))
    production = _launch(world, {"Name": "web1", tags.EXECUTION: execution})
    root = world.ec2.create_volume(
        SnapshotId=made,
        AvailabilityZone="us-east-1a",
        TagSpecifications=[
            {"ResourceType": "volume", "Tags": tags.as_list(logic.root_tags(execution, made))}
        ],
    )["VolumeId"]
    event = world.event("clean_up_boot_test", consistent=made)
    event["boot_test"] = {"state": {"phase": "booting", "instance_id": clone}}
    event["boot_test_error"] = {
        "Error": "BootTestFailed",
        "Cause": '{"errorMessage": "the throwaway instance is stopped"}',
    }

    with pytest.raises(CleanupPending, match=clone):
        # the clone was told to terminate: the state machine retries until it is gone
        boot_test.handler(event, lambda_context)
    again = boot_test.handler(event, lambda_context)
    assert (again["done"], again["result"]) == (True, tags.FAILED)

    def state_of(instance_id: str) -> str:
        found = world.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return str(found[0]["Instances"][0]["State"]["Name"])

    assert state_of(clone) == "terminated"
    assert state_of(another_executions) == "running"
    assert state_of(production) == "running"
    assert (
        world.ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [root]}])["Volumes"]
        == []
    )
    result = tags.as_dict(world.ec2.describe_snapshots(SnapshotIds=[made])["Snapshots"][0]["Tags"])
    assert result[tags.BOOT_TEST] == tags.FAILED
    assert result[tags.BOOT_TEST_REASON] == (
        "the boot test failed: BootTestFailed: the throwaway instance is stopped"
    )
