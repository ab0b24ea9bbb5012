"""A helper stopped or terminated by someone mid-revert (#13 item 6): the restore fails at once
with HelperLost, our volume goes, nothing of ours runs on, and the line finds another helper."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import pytest

from simulator import Report, Simulation, load
from tests.simulator.runs import SCENARIOS, failures

LOST_ROLE = "HelperLostFunctionRole"


@dataclass
class LostRun:
    report: Report
    lost_at: datetime  # when someone stopped or terminated the helper
    helper: str
    helper_state: str  # as DescribeInstances shows it at the end
    revert: dict[str, Any]  # the lost helper's Revert, as GetCommandInvocation shows it
    lost_calls: list[str]  # the HelperLost function's calls, in order
    lost_invocations: int


def _run(name: str) -> LostRun:
    with Simulation(load(SCENARIOS / f"{name}.json")) as simulation:
        report = simulation.run()
        [(helper, _)] = [
            (i, s) for i, s in simulation.world.lost.items() if s in {"stopping", "shutting-down"}
        ]
        reverts = [
            i
            for i in simulation.agents.log
            if i.instance_id == helper and i.parameters.get("Action") == "Revert"
        ]
        assert len(reverts) == 1
        revert = reverts[0]
        assert revert.lost_at is not None
        ssm = boto3.client("ssm", region_name=simulation.world.region)
        shown = ssm.get_command_invocation(CommandId=revert.command_id, InstanceId=helper)
        state = boto3.client("ec2", region_name=simulation.world.region).describe_instances(
            InstanceIds=[helper]
        )["Reservations"][0]["Instances"][0]["State"]["Name"]
        assert simulation.authorizer is not None
        calls = [c.action for c in simulation.authorizer.calls if c.principal == LOST_ROLE]
        invoked = [i for i in simulation.functions.invocations if "HelperLost" in i.function]
        return LostRun(report, revert.lost_at, helper, state, shown, calls, len(invoked))


@pytest.fixture(scope="module")
def fleet() -> LostRun:
    return _run("fleet-helper-lost")


@pytest.fixture(scope="module")
def named() -> LostRun:
    return _run("named-helper-stopped")


def _failed(report: Report) -> Any:
    [execution] = [e for e in report.executions if e.status == "FAILED"]
    return execution


def test_a_fleet_helper_terminated_mid_revert_fails_its_restore_at_once_with_helper_lost(
    fleet: LostRun,
) -> None:
    assert fleet.report.ok, failures(fleet.report)
    [lost] = [s for s in fleet.report.snapshots if s.alias == "night1.C"]
    assert lost.verdict == "failed"
    assert lost.reason.startswith(f"HelperLost: helper {fleet.helper} is shutting-down")
    assert "Revert" in lost.reason
    # Failed within seconds of the loss, not at the command's or the state's timeout
    # (7,800 s): the cleanup waits only for EC2 to finish the termination (30 s modelled).
    failed = _failed(fleet.report)
    ended = datetime.fromisoformat(failed.started_at).timestamp() + failed.virtual_seconds
    assert ended - fleet.lost_at.timestamp() < 120
    assert fleet.helper_state == "terminated"


def test_the_restore_waiting_in_the_lost_helpers_line_is_verified_on_a_new_helper(
    fleet: LostRun,
) -> None:
    [verified] = [s for s in fleet.report.snapshots if s.alias == "night1.D"]
    assert verified.verdict == "verified"
    assert verified.content_consistent
    # MaxHelpers 1: the lost helper's place was given back, a second helper launched.
    assert next(h["instance_id"] for h in fleet.report.helpers) == fleet.helper
    assert len(fleet.report.helpers) == 2
    assert not [h for h in fleet.report.helpers if h["running"]]
    assert fleet.report.volumes_left == []
    assert fleet.report.locks_held == {}
    assert fleet.report.claims_running == []


def test_the_lost_helpers_command_never_succeeds(fleet: LostRun, named: LostRun) -> None:
    for run in (fleet, named):
        assert run.revert["Status"] not in {"Success", "Failed"}
    # The named run lasts past the command's expiry: SSM times it out as undelivered.
    assert (named.revert["Status"], named.revert["StatusDetails"]) == (
        "TimedOut",
        "DeliveryTimedOut",
    )
    assert fleet.revert["Status"] in {"InProgress", "TimedOut"}


def test_the_event_of_an_instance_nobody_waits_on_costs_one_query(fleet: LostRun) -> None:
    # Four events: the lost helper's shutting-down (a Revert waits) and terminated, the
    # second helper's two when the retirement terminates it: one Query each, and only the
    # first reads the wait, fails its task and takes it out of the index.
    assert fleet.lost_invocations == 4
    assert fleet.lost_calls.count("dynamodb:Query") == 4
    assert sorted(c for c in fleet.lost_calls if c != "dynamodb:Query") == [
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "states:SendTaskFailure",
    ]


def test_a_named_helper_stopped_mid_revert_fails_the_restore_and_stays_stopped(
    named: LostRun,
) -> None:
    assert named.report.ok, failures(named.report)
    [lost] = named.report.snapshots
    assert lost.reason.startswith(f"HelperLost: helper {named.helper} is stopping")
    failed = _failed(named.report)
    ended = datetime.fromisoformat(failed.started_at).timestamp() + failed.virtual_seconds
    # Stopping lasts 60 s (modelled); the cleanup detaches once stopped, then deletes.
    assert ended - named.lost_at.timestamp() < 240
    assert named.helper_state == "stopped"  # never terminated, nor started, by us
    assert named.report.volumes_left == []
    assert named.report.locks_held == {}
    assert named.report.claims_running == []
