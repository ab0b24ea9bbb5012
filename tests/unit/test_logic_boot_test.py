"""logic/boot_test.py: when a system drive's consistent snapshot is boot-tested, what the
throwaway instance is launched with, and what the result says."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from vss_restore import boot_test as steps
from vss_restore import tags
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.sns import Sns
from vss_restore.aws.ssm import Ssm
from vss_restore.errors import InvalidRequest
from vss_restore.logic import boot_test
from vss_restore.settings import Settings

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
SOURCE = "i-0123456789abcdef0"
IMAGE = "ami-0123456789abcdef0"
ROOT = {tags.INSTANCE_ID: SOURCE, tags.DEVICE: "/dev/sda1"}
RUNNING = {
    "InstanceId": SOURCE,
    "ImageId": IMAGE,
    "RootDeviceName": "/dev/sda1",
    "State": {"Name": "running"},
}
AVAILABLE = {"ImageId": IMAGE, "State": "available"}


def _plan(**changes: object) -> boot_test.Plan:
    given: dict[str, object] = {
        "snapshot_tags": ROOT,
        "instance": RUNNING,
        "image": AVAILABLE,
        "tested_at": [],
        "managed_by_ssm": True,
    }
    given.update(changes)
    return boot_test.plan(
        given["snapshot_tags"],  # type: ignore[arg-type]
        given["instance"],  # type: ignore[arg-type]
        given["image"],  # type: ignore[arg-type]
        given["tested_at"],  # type: ignore[arg-type]
        NOW,
        managed_by_ssm=bool(given["managed_by_ssm"]),
    )


def test_a_system_drive_never_tested_is_tested_from_the_sources_own_image() -> None:
    plan = _plan()
    assert (plan.action, plan.image_id, plan.root_device) == ("test", IMAGE, "/dev/sda1")
    assert plan.criterion == boot_test.BY_SSM


def test_a_source_without_ssm_is_judged_by_the_status_checks() -> None:
    assert _plan(managed_by_ssm=False).criterion == boot_test.BY_STATUS_CHECKS


@pytest.mark.parametrize("device", ["xvdb", "/dev/xvdf", "sda1x"])
def test_a_data_drive_is_skipped(device: str) -> None:
    plan = _plan(snapshot_tags={**ROOT, tags.DEVICE: device})
    assert plan.action == "skip"
    assert "not the system drive" in plan.reason


def test_the_device_tag_may_omit_dev() -> None:
    assert _plan(snapshot_tags={**ROOT, tags.DEVICE: "sda1"}).action == "test"


@pytest.mark.parametrize(
    ("tested_at", "action"),
    [
        (["2026-11-19T03:00:01Z"], "skip"),  # within 7 days
        (["2026-11-18T03:00:00Z"], "test"),  # exactly 7 days ago: due again
        (["2026-11-01T00:00:00Z", "2026-11-24T02:00:00Z"], "skip"),
        (["not a time"], "test"),  # a tag someone else wrote counts for nothing
        (["2027-01-01T00:00:00Z"], "test"),  # a time in the future: not a test of ours
    ],
)
def test_weekly_is_at_most_one_test_per_instance_in_any_seven_days(
    tested_at: list[str], action: str
) -> None:
    assert _plan(tested_at=tested_at).action == action


@pytest.mark.parametrize(
    ("instance", "image", "said"),
    [
        (None, AVAILABLE, "is gone"),
        ({**RUNNING, "State": {"Name": "terminated"}}, AVAILABLE, "is gone"),
        (RUNNING, None, "deregistered or not visible"),
        (RUNNING, {**AVAILABLE, "State": "deregistered"}, "billing product code"),
    ],
)
def test_no_source_or_no_image_is_not_testable_and_says_why(
    instance: dict[str, object] | None, image: dict[str, object] | None, said: str
) -> None:
    plan = _plan(instance=instance, image=image)
    assert plan.action == "not-testable"
    assert said in plan.reason


def test_a_snapshot_without_its_lineage_is_skipped() -> None:
    assert _plan(snapshot_tags={}).action == "skip"


def _settings() -> Settings:
    return replace(
        Settings(),
        helper_instance_profile="arn:aws:iam::123456789012:instance-profile/p",
        boot_test="weekly",
        boot_test_security_group="sg-0123456789abcdef0",
        boot_test_subnet_ids=("subnet-0123456789abcdef0",),
    )


def test_the_launch_is_caged_and_tagged_ours() -> None:
    request = boot_test.launch_request(
        _settings(), _plan(), "subnet-0123456789abcdef0", "arn:exec", "snap-1"
    )
    assert request["SecurityGroupIds"] == ["sg-0123456789abcdef0"]
    assert request["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert request["BlockDeviceMappings"][0]["DeviceName"] == "/dev/sda1"
    assert "KeyName" not in request
    assert "UserData" not in request
    for specification in request["TagSpecifications"]:
        found = tags.as_dict(specification["Tags"])
        assert found[tags.RESOURCE] == tags.BOOT_TEST_INSTANCE
        assert found[tags.EXECUTION] == "arn:exec"
        assert "ConsistentSnapshot" not in found  # none of the source's tags
    assert len(request["ClientToken"]) <= 64


def test_only_the_boot_tests_own_resources_of_this_execution_are_ours() -> None:
    mine = {"Tags": tags.as_list(boot_test.instance_tags("arn:exec", "snap-1"))}
    assert boot_test.is_ours(mine, tags.BOOT_TEST_INSTANCE, "arn:exec")
    assert not boot_test.is_ours(mine, tags.BOOT_TEST_INSTANCE, "arn:other")
    assert not boot_test.is_ours(mine, tags.BOOT_TEST_ROOT, "arn:exec")
    assert not boot_test.is_ours({"Tags": []}, tags.BOOT_TEST_INSTANCE, "arn:exec")


def test_each_start_is_billed_at_least_a_minute() -> None:
    runs = [
        ("2026-11-25T03:00:00Z", "2026-11-25T03:00:20Z"),  # the first boot, stopped at once
        ("2026-11-25T03:01:00Z", "2026-11-25T03:05:30Z"),
    ]
    assert boot_test.billed_seconds(runs) == 60 + 270
    assert boot_test.cost_text(330, 0.188) == "330 s of 0.188 USD/h: 0.0172 USD"


@pytest.mark.parametrize(
    ("criterion", "ping", "system", "instance", "seen"),
    [
        (boot_test.BY_SSM, "Online", "ok", "ok", "SSM Online"),
        (boot_test.BY_SSM, "", "ok", "ok", None),  # the status checks do not answer for SSM
        (boot_test.BY_STATUS_CHECKS, "", "ok", "ok", "both EC2 status checks ok"),
        (boot_test.BY_STATUS_CHECKS, "", "ok", "initializing", None),
        (boot_test.BY_STATUS_CHECKS, "", "ok", "impaired", None),
    ],
)
def test_when_a_boot_counts_as_done(
    criterion: str, ping: str, system: str, instance: str, seen: str | None
) -> None:
    assert boot_test.boot_seen(criterion, ping, system, instance) == seen


def test_the_result_tags_are_the_boot_test_keys_only() -> None:
    found = boot_test.verdict_tags(tags.BOOTED, "SSM Online 240 s after the start", NOW, 300)
    assert sorted(found) == sorted(tags.BOOT_TEST_KEYS)
    assert found[tags.BOOT_TESTED_AT] == "2026-11-25T03:00:00Z"


def test_off_by_default_and_only_never_or_weekly() -> None:
    assert Settings.from_environment({}).boot_test == "never"
    assert Settings.from_environment({"BOOT_TEST": "Weekly"}).boot_test == "weekly"
    with pytest.raises(InvalidRequest):
        Settings.from_environment({"BOOT_TEST": "daily"})


@pytest.fixture
def account() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name="us-east-1")


def _consistent_snapshot_of_the_root(ec2: Any, image_id: str) -> tuple[str, str]:
    instance = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]
    root = instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    snapshot = ec2.create_snapshot(
        VolumeId=root,
        TagSpecifications=[
            {
                "ResourceType": "snapshot",
                "Tags": tags.as_list(
                    {
                        tags.RESOURCE: tags.CONSISTENT_SNAPSHOT,
                        tags.INSTANCE_ID: instance["InstanceId"],
                        tags.DEVICE: instance["RootDeviceName"],
                    }
                ),
            }
        ],
    )["SnapshotId"]
    return instance["InstanceId"], snapshot


def test_a_source_whose_image_is_gone_gets_a_not_testable_verdict_and_nothing_launched(
    account: Any,
) -> None:
    """The brief's trap: without the source's own AMI a license-included Windows root cannot
    be booted; the snapshot says so, nothing is launched (never a silent pass)."""
    gone = "ami-0badbadbadbadbad0"  # moto launches from any ID; DescribeImages knows none
    _, snapshot = _consistent_snapshot_of_the_root(account, gone)
    state = steps.advance(
        Ec2(account),
        Ssm(boto3.client("ssm", region_name="us-east-1")),
        Sns(boto3.client("sns", region_name="us-east-1")),
        _settings(),
        execution="arn:exec",
        snapshot_id=snapshot,
        state=None,
        now=NOW,
    )
    assert state["done"] is True
    assert state["result"] == tags.NOT_TESTABLE
    found = tags.as_dict(account.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["Tags"])
    assert found[tags.BOOT_TEST] == tags.NOT_TESTABLE
    assert gone in found[tags.BOOT_TEST_REASON]
    launched = account.describe_instances(
        Filters=[{"Name": f"tag:{tags.RESOURCE}", "Values": [tags.BOOT_TEST_INSTANCE]}]
    )["Reservations"]
    assert launched == []
