"""The reconciliation's sweep of what a lost boot test left (docs/boot-test.md): which
instances and volumes it may remove, and when."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from vss_restore import boot_test, reconcile, tags
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.states import StepFunctions
from vss_restore.logic.reconciliation import (
    BOOT_TEST_ALLOWANCE,
    DELETED,
    TERMINATED,
    boot_test_bound,
    boot_test_left,
    is_boot_test_resource,
)
from vss_restore.settings import Settings

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:Restore"
OURS = "arn:aws:states:us-east-1:123456789012:execution:Restore:001"
OTHERS = "arn:aws:states:us-east-1:123456789012:execution:AnotherStack:001"
SETTINGS = replace(Settings(), state_machine_arn=MACHINE, boot_test="weekly")


def test_the_bound_is_the_boot_tests_own() -> None:
    assert BOOT_TEST_ALLOWANCE == boot_test.SWAP_ALLOWANCE
    assert boot_test_bound(20) == timedelta(minutes=70)


@pytest.mark.parametrize(
    ("status", "age", "left"),
    [
        ("RUNNING", timedelta(days=3), False),  # never while its execution runs
        ("ABORTED", timedelta(minutes=1), True),
        ("FAILED", timedelta(minutes=1), True),
        ("TIMED_OUT", timedelta(minutes=1), True),
        ("SUCCEEDED", timedelta(minutes=1), True),
        ("", timedelta(minutes=69), False),  # unknown: within the bound, it may still run
        ("", timedelta(minutes=71), True),
    ],
)
def test_left_by_a_lost_execution(status: str, age: timedelta, left: bool) -> None:
    assert boot_test_left(status, NOW - age, NOW, helper_boot_minutes=20) is left


@pytest.mark.parametrize(
    ("kind", "ours"),
    [
        (tags.BOOT_TEST_INSTANCE, True),
        (tags.BOOT_TEST_ROOT, True),
        (tags.TEMPORARY_VOLUME, False),
        (tags.LAUNCHED_HELPER, False),
        ("", False),
    ],
)
def test_only_the_boot_tests_resources_are_its(kind: str, ours: bool) -> None:
    resource = {"Tags": [{"Key": tags.RESOURCE, "Value": kind}]} if kind else {}
    assert is_boot_test_resource(resource) is ours


class FakeEc2:
    def __init__(self, instances: list[dict[str, Any]], volumes: list[dict[str, Any]]) -> None:
        self.instances = instances
        self.volumes = volumes
        self.terminated: list[str] = []
        self.deleted: list[str] = []

    def instances_tagged(self, key: str, value: str) -> list[dict[str, Any]]:
        # As a careless filter would: everything, so that the code's own check is what holds.
        return self.instances

    def volumes_tagged(self, key: str, value: str) -> list[dict[str, Any]]:
        return [v for v in self.volumes if tags.as_dict(v["Tags"]).get(key) == value] + [
            v for v in self.volumes if tags.RESOURCE not in tags.as_dict(v["Tags"])
        ]

    def terminate_instance(self, instance_id: str) -> None:
        self.terminated.append(instance_id)

    def delete_volume(self, volume_id: str) -> None:
        self.deleted.append(volume_id)

    def volume(self, volume_id: str) -> dict[str, Any] | None:
        return next(v for v in self.volumes if v["VolumeId"] == volume_id)


class FakeStates:
    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses

    def status(self, execution: str) -> str:
        return self.statuses.get(execution, "")


def _tagged(kind: str, execution: str) -> list[dict[str, str]]:
    found = {tags.EXECUTION: execution, tags.SOURCE_SNAPSHOT: "snap-0123456789abcdef0"}
    if kind:
        found[tags.RESOURCE] = kind
    return tags.as_list(found)


def _instance(name: str, kind: str, execution: str, age: timedelta) -> dict[str, Any]:
    return {"InstanceId": name, "LaunchTime": NOW - age, "Tags": _tagged(kind, execution)}


def _volume(name: str, kind: str, execution: str, state: str = "available") -> dict[str, Any]:
    return {
        "VolumeId": name,
        "CreateTime": NOW - timedelta(hours=2),
        "State": state,
        "Tags": _tagged(kind, execution),
    }


def _sweep(ec2: FakeEc2, statuses: dict[str, str]) -> list[Any]:
    return reconcile.sweep_boot_tests(
        cast(Ec2, ec2), cast(StepFunctions, FakeStates(statuses)), SETTINGS, NOW
    )


def test_only_this_stacks_lost_boot_tests_are_removed() -> None:
    hour = timedelta(hours=1)
    ec2 = FakeEc2(
        [
            _instance("i-0lost", tags.BOOT_TEST_INSTANCE, OURS, hour),
            _instance("i-0production", "", OURS, hour),  # no boot-test tag: never
            _instance("i-0helper", tags.LAUNCHED_HELPER, OURS, hour),
            _instance("i-0others", tags.BOOT_TEST_INSTANCE, OTHERS, hour),
        ],
        [
            _volume("vol-0root", tags.BOOT_TEST_ROOT, OURS),
            _volume("vol-0launch", tags.BOOT_TEST_INSTANCE, OURS),
            _volume("vol-0production", "", OURS),
            _volume("vol-0others", tags.BOOT_TEST_ROOT, OTHERS),
        ],
    )
    swept = _sweep(ec2, {OURS: "ABORTED", OTHERS: "ABORTED"})
    assert ec2.terminated == ["i-0lost"]
    assert sorted(ec2.deleted) == ["vol-0launch", "vol-0root"]
    assert {(f.resource_id, f.action) for f in swept} == {
        ("i-0lost", TERMINATED),
        ("vol-0root", DELETED),
        ("vol-0launch", DELETED),
    }


def test_nothing_is_touched_while_the_execution_runs() -> None:
    ec2 = FakeEc2(
        [_instance("i-0clone", tags.BOOT_TEST_INSTANCE, OURS, timedelta(days=2))],
        [_volume("vol-0root", tags.BOOT_TEST_ROOT, OURS, "in-use")],
    )
    assert _sweep(ec2, {OURS: "RUNNING"}) == []
    assert ec2.terminated == ec2.deleted == []


def test_an_execution_step_functions_forgot_is_judged_by_the_bound() -> None:
    young = FakeEc2([_instance("i-0young", tags.BOOT_TEST_INSTANCE, OURS, timedelta(hours=1))], [])
    assert _sweep(young, {}) == []
    old = FakeEc2([_instance("i-0old", tags.BOOT_TEST_INSTANCE, OURS, timedelta(hours=2))], [])
    [found] = _sweep(old, {})
    assert (found.resource_id, found.action, found.execution_status) == ("i-0old", TERMINATED, "")


def test_a_root_still_attached_is_left_for_the_next_run_after_a_bounded_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(reconcile.clock, "sleep", slept.append)
    ec2 = FakeEc2([], [_volume("vol-0root", tags.BOOT_TEST_ROOT, OURS, "in-use")])
    [found] = _sweep(ec2, {OURS: "FAILED"})
    assert found.action == "still attached; deleted by the next run"
    assert ec2.deleted == []
    assert sum(slept) == reconcile.BOOT_TEST_VOLUME_WAIT_SECONDS
