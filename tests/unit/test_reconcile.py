"""Handler reconcile: the daily look at what is there, not at what events announced."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID

from tools.cfn_template import load_template
from vss_restore import clock, tags, turns
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.states import StepFunctions
from vss_restore.errors import InvalidRequest
from vss_restore.handlers import claim_snapshot, reconcile
from vss_restore.logic.reconciliation import MAX_ACTIONS_PER_RUN
from vss_restore.observability import (
    ORPHAN_VOLUMES_DELETED,
    ORPHAN_VOLUMES_FOUND,
    RECONCILE_RESTORES_REMAINING,
    RECONCILE_RESTORES_STARTED,
)
from vss_restore.settings import Settings

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
# The run: the sample's schedule time (06:00 UTC), a few seconds late.
NOW = datetime(2026, 11, 26, 6, 0, 5, tzinfo=UTC)
YESTERDAY = NOW - timedelta(hours=30)  # the nightly backup at 00:05 the day before
TODAY = "20261126"


@dataclass
class Stack:
    """The moto account with the restore state machine and the reconciliation's settings."""

    world: Any
    sfn: Any
    state_machine_arn: str
    monkeypatch: pytest.MonkeyPatch

    def run(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return reconcile.handler(event, context)

    def executions(self) -> list[tuple[str, dict[str, Any]]]:
        """(name, input) of every execution of the state machine, oldest first."""
        listed = self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
        described = [self.sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]
        return sorted(((d["name"], json.loads(d["input"])) for d in described), key=lambda e: e[0])

    def execution(self, name: str, *, stopped: bool = False) -> str:
        arn = str(
            self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name, input="{}")[
                "executionArn"
            ]
        )
        if stopped:
            self.sfn.stop_execution(executionArn=arn)
        return arn

    def execution_arn(self, name: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def snapshot(self, started: datetime, snapshot_tags: dict[str, str]) -> str:
        snapshot_id = str(
            self.world.ec2.create_snapshot(
                VolumeId=self.world.source_volume_id,
                TagSpecifications=[
                    {"ResourceType": "snapshot", "Tags": tags.as_list(snapshot_tags)}
                ],
            )["SnapshotId"]
        )
        self.started(snapshot_id, started)
        return snapshot_id

    def started(self, snapshot_id: str, when: datetime) -> None:
        """Backdate a snapshot (moto starts and completes them at the call)."""
        self.world.backend.snapshots[snapshot_id].start_time = _naive(when)

    def volume(self, age: timedelta, **how: Any) -> str:
        """A temporary volume created `age` before the run (tagged ours unless told)."""
        volume_id = str(self.world.temporary_volume(**how))
        self.world.backend.get_volume(volume_id).create_time = _naive(NOW - age)
        return volume_id

    def at(self, moment: datetime) -> None:
        self.monkeypatch.setattr(clock, "now", lambda: moment)

    def deleting(self) -> None:
        self.monkeypatch.setenv("DELETE_ORPHAN_VOLUMES", "true")


def _naive(moment: datetime) -> datetime:
    """moto keeps times as naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None)


@pytest.fixture
def stack(world: Any, monkeypatch: pytest.MonkeyPatch) -> Stack:
    sfn = boto3.client("stepfunctions")
    state_machine_arn = sfn.create_state_machine(
        name="RestoreStateMachine",
        definition=json.dumps({"StartAt": "Restore", "States": {"Restore": {"Type": "Succeed"}}}),
        roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/vss-restore-states",
    )["stateMachineArn"]
    for name in ("RECONCILE_DAYS", "ORPHAN_VOLUME_HOURS", "DELETE_ORPHAN_VOLUMES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STATE_MACHINE_ARN", state_machine_arn)
    stack = Stack(world, sfn, state_machine_arn, monkeypatch)
    stack.at(NOW)
    # The world's snapshot: last night's VSS backup, no verdict yet.
    stack.started(world.snapshot_id, YESTERDAY)
    return stack


def _vss() -> dict[str, str]:
    defaults = Settings()
    return {defaults.vss_tag_key: defaults.vss_tag_value}


# --- restores no event started -------------------------------------------------------


def test_a_vss_snapshot_from_yesterday_without_a_verdict_is_restored(
    stack: Stack, sample: Any, lambda_context: Any
) -> None:
    summary = stack.run(sample("reconcile"), lambda_context)

    snapshot_id = stack.world.snapshot_id
    assert summary["restores_started"] == [snapshot_id]
    assert stack.executions() == [
        (f"reconcile-{snapshot_id}-{TODAY}", {"snapshot_id": snapshot_id})
    ]


def test_an_aws_vss_snapshot_without_a_verdict_is_restored_too(
    stack: Stack, sample: Any, lambda_context: Any
) -> None:
    aws_vss = stack.snapshot(
        YESTERDAY, {tags.AWS_APP_CONSISTENT: "true", tags.AWS_VSS_CONFIG: "{}"}
    )

    summary = stack.run(sample("reconcile"), lambda_context)

    assert summary["restores_started"] == sorted([stack.world.snapshot_id, aws_vss])


def _with_a_verdict(stack: Stack, context: Any) -> None:
    verdict = {tags.STATUS: tags.FAILED, tags.EXECUTION: stack.execution_arn("night")}
    stack.world.ec2.create_tags(Resources=[stack.world.snapshot_id], Tags=tags.as_list(verdict))


def _older_than_reconcile_days(stack: Stack, context: Any) -> None:
    stack.started(stack.world.snapshot_id, NOW - timedelta(days=Settings().reconcile_days, hours=1))


def _being_restored(stack: Stack, context: Any) -> None:
    claim_snapshot.handler(stack.world.event("claim_snapshot"), context)


def _not_vss(stack: Stack, context: Any) -> None:
    stack.world.ec2.delete_tags(
        Resources=[stack.world.snapshot_id], Tags=[{"Key": Settings().vss_tag_key}]
    )


def _made_by_vss_restore(stack: Stack, context: Any) -> None:
    stack.world.ec2.create_tags(
        Resources=[stack.world.snapshot_id],
        Tags=[{"Key": tags.RESOURCE, "Value": tags.CONSISTENT_SNAPSHOT}],
    )


@pytest.mark.parametrize(
    "setup",
    [_with_a_verdict, _older_than_reconcile_days, _being_restored, _not_vss, _made_by_vss_restore],
    ids=["verdict", "older", "running-claim", "not-vss", "our-own-output"],
)
def test_a_snapshot_that_needs_no_restore_gets_none(
    stack: Stack, sample: Any, lambda_context: Any, setup: Callable[[Stack, Any], None]
) -> None:
    setup(stack, lambda_context)

    summary = stack.run(sample("reconcile"), lambda_context)

    assert summary["restores_started"] == []
    assert stack.executions() == []


def test_a_claim_whose_execution_died_does_not_stop_the_restore(
    stack: Stack, sample: Any, lambda_context: Any, world: Any
) -> None:
    ledger = Ledger("vss-restore-unit-Ledger", client=boto3.client("dynamodb"))
    long_ago = int((NOW - timedelta(seconds=turns.CLAIM_LEASE_SECONDS + 60)).timestamp())
    ledger.claim(world.snapshot_id, world.execution, long_ago, turns.CLAIM_LEASE_SECONDS)

    summary = stack.run(sample("reconcile"), lambda_context)

    assert summary["restores_started"] == [world.snapshot_id]


def test_a_second_run_the_same_day_starts_nothing_new(
    stack: Stack, sample: Any, lambda_context: Any
) -> None:
    stack.run(sample("reconcile"), lambda_context)
    stack.at(NOW + timedelta(hours=12))

    again = stack.run(sample("reconcile"), lambda_context)

    assert again["restores_started"] == []
    assert again["restores_already_started_today"] == [stack.world.snapshot_id]
    assert len(stack.executions()) == 1


def test_the_next_day_a_snapshot_still_without_a_verdict_is_tried_again(
    stack: Stack, sample: Any, lambda_context: Any
) -> None:
    stack.run(sample("reconcile"), lambda_context)
    stack.at(NOW + timedelta(days=1))

    again = stack.run(sample("reconcile"), lambda_context)

    assert again["restores_started"] == [stack.world.snapshot_id]
    assert [name[-8:] for name, _ in stack.executions()] == [TODAY, "20261127"]


def test_an_execution_of_that_name_with_another_input_is_left_as_it_is(
    stack: Stack, sample: Any, lambda_context: Any
) -> None:
    snapshot_id = stack.world.snapshot_id
    name = f"reconcile-{snapshot_id}-{TODAY}"
    other_input = {"snapshot_id": snapshot_id, "keep_volume": True}
    stack.sfn.start_execution(
        stateMachineArn=stack.state_machine_arn, name=name, input=json.dumps(other_input)
    )

    summary = stack.run(sample("reconcile"), lambda_context)

    assert summary["restores_started"] == []
    assert summary["restores_already_started_today"] == [snapshot_id]
    assert stack.executions() == [(name, other_input)]


def test_starting_a_name_that_exists_with_another_input_is_not_an_error(stack: Stack) -> None:
    states = StepFunctions()
    states.start(stack.state_machine_arn, "reconcile-x", {"snapshot_id": "snap-01"})

    assert not states.start(stack.state_machine_arn, "reconcile-x", {"snapshot_id": "snap-02"})
    assert states.status(stack.execution_arn("reconcile-x")) == "RUNNING"
    assert states.status(stack.execution_arn("never-started")) == ""


def test_a_run_starts_at_most_its_limit_and_says_how_many_remain(
    stack: Stack, sample: Any, lambda_context: Any
) -> None:
    for hour in range(MAX_ACTIONS_PER_RUN):
        stack.snapshot(YESTERDAY + timedelta(minutes=hour + 1), _vss())

    summary = stack.run(sample("reconcile"), lambda_context)

    assert len(summary["restores_started"]) == MAX_ACTIONS_PER_RUN
    # Oldest first: the one closest to leaving the window goes first.
    assert summary["restores_started"][0] == stack.world.snapshot_id
    assert summary["restores_remaining"] == 1
    assert len(stack.executions()) == MAX_ACTIONS_PER_RUN


# --- temporary volumes nobody owns ------------------------------------------------------


def test_an_orphan_volume_is_reported_and_kept_by_default(
    stack: Stack, sample: Any, lambda_context: Any, alert_topic: Any
) -> None:
    forgotten = stack.volume(timedelta(hours=25))  # its execution is not known any more
    aborted = stack.volume(timedelta(days=3), execution=stack.execution("night", stopped=True))
    stack.world.attach(aborted, "xvdf")

    summary = stack.run(sample("reconcile"), lambda_context)

    assert sorted(summary["orphans"]) == sorted([forgotten, aborted])
    assert summary["orphans_deleted"] == []
    assert stack.world.volume(forgotten) is not None
    assert stack.world.volume(aborted)["Attachments"][0]["State"] == "attached"
    [(subject, message)] = alert_topic.published()
    assert subject == "vss-restore: 2 orphan temporary volume(s)"
    assert f"Volume:     {forgotten} (reported)" in message
    assert f"attached to {stack.world.helper_id}" in message
    assert "(ABORTED)" in message
    assert "(not found)" in message
    assert "DeleteOrphanVolumes is false" in message


def test_with_delete_orphan_volumes_an_orphan_is_removed_like_the_cleanup_does(
    stack: Stack, sample: Any, lambda_context: Any
) -> None:
    detached = stack.volume(timedelta(hours=25))
    attached = stack.volume(timedelta(hours=25), execution=stack.execution_arn("gone"))
    stack.world.attach(attached, "xvdf")
    stack.deleting()

    first = stack.run(sample("reconcile"), lambda_context)
    second = stack.run(sample("reconcile"), lambda_context)  # the next day's run

    assert first["orphans_deleted"] == [detached]
    assert stack.world.volume(detached) is None
    assert second["orphans_deleted"] == [attached]  # force-detached first, then deleted
    assert stack.world.volume(attached) is None


def test_volumes_of_a_running_execution_and_young_volumes_are_untouched(
    stack: Stack, sample: Any, lambda_context: Any, alert_topic: Any
) -> None:
    running = stack.volume(timedelta(days=2), execution=stack.execution("slow-revert"))
    young = stack.volume(timedelta(hours=23))
    stack.deleting()

    summary = stack.run(sample("reconcile"), lambda_context)

    assert summary["orphans"] == []
    assert stack.world.volume(running) is not None
    assert stack.world.volume(young) is not None
    assert alert_topic.published() == []


@pytest.mark.parametrize(
    "volume_tags",
    [
        {tags.EXECUTION: "<gone>", tags.SOURCE_SNAPSHOT: "<snapshot>", "Name": "data disk"},
        {
            tags.RESOURCE: tags.TEMPORARY_VOLUME,
            tags.SOURCE_SNAPSHOT: "<snapshot>",
            tags.EXECUTION: "arn:aws:states:us-east-1:123456789012:execution:OtherStack:night",
        },
        {tags.RESOURCE: tags.TEMPORARY_VOLUME, tags.SOURCE_SNAPSHOT: "<snapshot>"},
    ],
    ids=["no-resource-tag", "another-stacks-execution", "no-execution-tag"],
)
def test_a_volume_that_is_not_ours_is_untouched_even_when_deleting(
    stack: Stack, sample: Any, lambda_context: Any, volume_tags: dict[str, str]
) -> None:
    replace = {"<gone>": stack.execution_arn("gone"), "<snapshot>": stack.world.snapshot_id}
    volume_tags = {k: replace.get(v, v) for k, v in volume_tags.items()}
    volume_id = stack.volume(timedelta(days=5), volume_tags=volume_tags)
    stack.deleting()

    summary = stack.run(sample("reconcile"), lambda_context)

    assert volume_id not in summary["orphans"]
    assert stack.world.volume(volume_id) is not None


def test_an_orphan_tagged_ours_without_its_snapshot_is_reported_but_not_deleted(
    stack: Stack, sample: Any, lambda_context: Any, alert_topic: Any
) -> None:
    volume_tags = {tags.RESOURCE: tags.TEMPORARY_VOLUME, tags.EXECUTION: stack.execution_arn("x")}
    volume_id = stack.volume(timedelta(days=5), volume_tags=volume_tags)
    stack.deleting()

    summary = stack.run(sample("reconcile"), lambda_context)

    assert summary["orphans"] == [volume_id]
    assert summary["orphans_deleted"] == []
    assert stack.world.volume(volume_id) is not None
    [(_, message)] = alert_topic.published()
    assert f"{volume_id} (left untouched: {volume_id} is not a temporary volume" in message


# --- what every run reports ------------------------------------------------------------


def test_a_run_emits_its_counts_as_metrics(
    stack: Stack,
    sample: Any,
    lambda_context: Any,
    emitted_metrics: Callable[[], list[str]],
) -> None:
    stack.run(sample("reconcile"), lambda_context)

    assert set(emitted_metrics()) >= {
        RECONCILE_RESTORES_STARTED,
        RECONCILE_RESTORES_REMAINING,
        ORPHAN_VOLUMES_FOUND,
        ORPHAN_VOLUMES_DELETED,
    }


def test_without_the_state_machine_arn_the_run_is_refused(
    stack: Stack, sample: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATE_MACHINE_ARN")

    with pytest.raises(InvalidRequest, match="STATE_MACHINE_ARN is not set"):
        stack.run(sample("reconcile"), lambda_context)


# --- its settings ----------------------------------------------------------------------


def test_the_template_defaults_are_the_settings_defaults() -> None:
    parameters = load_template(TEMPLATE)["Parameters"]
    defaults = Settings()

    assert int(parameters["ReconcileDays"]["Default"]) == defaults.reconcile_days
    assert int(parameters["OrphanVolumeHours"]["Default"]) == defaults.orphan_volume_hours
    assert (
        parameters["DeleteOrphanVolumes"]["Default"] == str(defaults.delete_orphan_volumes).lower()
    )
    for name, env in (
        ("ReconcileDays", "RECONCILE_DAYS"),
        ("OrphanVolumeHours", "ORPHAN_VOLUME_HOURS"),
    ):
        low, high = parameters[name]["MinValue"], parameters[name]["MaxValue"]
        Settings.from_environment({env: str(low)})
        Settings.from_environment({env: str(high)})
        with pytest.raises(InvalidRequest):
            Settings.from_environment({env: str(high + 1)})


def test_the_reconciliation_settings_are_read_from_the_environment() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:RestoreStateMachine-1A2B"
    settings = Settings.from_environment(
        {
            "STATE_MACHINE_ARN": arn,
            "RECONCILE_DAYS": "7",
            "ORPHAN_VOLUME_HOURS": "48",
            "DELETE_ORPHAN_VOLUMES": "TRUE",
        }
    )

    assert (
        settings.state_machine_arn,
        settings.reconcile_days,
        settings.orphan_volume_hours,
        settings.delete_orphan_volumes,
    ) == (arn, 7, 48, True)


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("RECONCILE_DAYS", "0", "RECONCILE_DAYS 0 is not between 1 and 30"),
        ("RECONCILE_DAYS", "three", "RECONCILE_DAYS 'three' is not a whole number"),
        ("ORPHAN_VOLUME_HOURS", "721", "ORPHAN_VOLUME_HOURS 721 is not between 1 and 720"),
        ("DELETE_ORPHAN_VOLUMES", "yes", "DELETE_ORPHAN_VOLUMES 'yes' is neither true nor false"),
        ("STATE_MACHINE_ARN", "RestoreStateMachine", "is not a state machine ARN"),
    ],
)
def test_a_bad_reconciliation_setting_is_refused_with_its_value(
    name: str, value: str, error: str
) -> None:
    with pytest.raises(InvalidRequest, match=error):
        Settings.from_environment({name: value})
