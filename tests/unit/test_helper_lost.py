"""A helper lost (stopped or terminated by someone): the restores waiting on its commands
fail at once with HelperLost; the cleanup copes with the volume on a lost helper."""

import json
import time
from typing import Any

import boto3
import pytest

from tests.unit.test_callbacks import WaitingTasks
from vss_restore import lost, turns
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger, Waiting, command_key
from vss_restore.cleanup import give_back_helper
from vss_restore.errors import CleanupPending
from vss_restore.handlers import clean_up, command_finished, helper_lost, run_disk_tool

from .conftest import LEDGER_TABLE

ASL = "statemachine/restore.asl.json"


@pytest.fixture
def tasks(monkeypatch: pytest.MonkeyPatch) -> WaitingTasks:
    waiting = WaitingTasks()
    for module in (run_disk_tool, command_finished, helper_lost):
        monkeypatch.setattr(module, "StepFunctions", lambda: waiting)
    return waiting


def _state_change(instance_id: str, state: str) -> dict[str, Any]:
    """As EC2 User Guide, "State change events for Amazon EC2 instances" shows it."""
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2026-11-25T00:08:42Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "state": state},
    }


def _inspect_answered(world: Any, lambda_context: Any, volume_id: str) -> str:
    """An Inspect sent for a waiting task: moto's command ends at once (empty output), so
    its token is answered by the send's own look (a failure: no report)."""
    event = {**world.event("run_disk_tool-inspect", volume=volume_id), "task_token": "t-1"}
    return str(run_disk_tool.handler(event, lambda_context)["command_id"])


def _ledger() -> Ledger:
    return Ledger(LEDGER_TABLE, boto3.client("dynamodb", region_name="us-east-1"))


def _keep_waiting(volume_id: str, instance_id: str, token: str = "t-live") -> None:
    """A task waiting for the Inspect of `volume_id` on `instance_id` (token live)."""
    _ledger().wait_for(
        command_key(volume_id, "Inspect"),
        Waiting(token, "exec-1", "cmd-1", "2026-11-25T00:00:00Z"),
        int(time.time()),
        instance_id,
    )


@pytest.mark.parametrize("state", ["stopping", "stopped", "shutting-down", "terminated"])
def test_each_state_that_loses_the_helper_fails_its_waiting_task_naming_helper_and_state(
    world: Any, lambda_context: Any, tasks: WaitingTasks, state: str
) -> None:
    _keep_waiting("vol-0123456789abcdef0", world.helper_id)

    found = helper_lost.handler(_state_change(world.helper_id, state), lambda_context)

    [(token, error, cause)] = tasks.answers
    assert (token, error) == ("t-live", "HelperLost")
    assert cause["errorType"] == "HelperLost"
    assert cause["errorMessage"].startswith(f"helper {world.helper_id} is {state}")
    assert "Inspect of vol-0123456789abcdef0" in cause["errorMessage"]
    assert found["waits"] == {command_key("vol-0123456789abcdef0", "Inspect"): "failed"}


def test_the_next_event_for_the_same_helper_finds_nothing_left_to_fail(
    world: Any, lambda_context: Any, tasks: WaitingTasks
) -> None:
    _keep_waiting("vol-0123456789abcdef0", world.helper_id)
    helper_lost.handler(_state_change(world.helper_id, "stopping"), lambda_context)

    again = helper_lost.handler(_state_change(world.helper_id, "stopped"), lambda_context)

    assert again["waits"] == {}
    assert len(tasks.answers) == 1


@pytest.mark.parametrize("state", ["pending", "running"])
def test_a_helper_starting_or_running_loses_nothing(
    world: Any, lambda_context: Any, tasks: WaitingTasks, state: str
) -> None:
    _keep_waiting("vol-0123456789abcdef0", world.helper_id)

    assert helper_lost.handler(_state_change(world.helper_id, state), lambda_context)["waits"] == {}
    assert tasks.answers == []


def test_another_instance_lost_touches_no_restore(
    world: Any, lambda_context: Any, tasks: WaitingTasks
) -> None:
    _keep_waiting("vol-0123456789abcdef0", world.helper_id)

    helper_lost.handler(_state_change("i-0aaaaaaaaaaaaaaaa", "terminated"), lambda_context)

    assert tasks.answers == []


def test_a_wait_already_answered_by_its_command_is_out_of_the_index(
    world: Any, lambda_context: Any, tasks: WaitingTasks
) -> None:
    volume_id = world.temporary_volume()
    _inspect_answered(world, lambda_context, volume_id)
    assert len(tasks.answers) == 1

    found = helper_lost.handler(_state_change(world.helper_id, "terminated"), lambda_context)

    assert found["waits"] == {}
    assert len(tasks.answers) == 1


def test_the_lookback_covers_the_longest_wait_for_a_disk_tool_command() -> None:
    with open(ASL, encoding="utf-8") as file:
        machine = json.load(file)
    states = machine["States"]["Restore each snapshot"]["ItemProcessor"]["States"]
    waits = [
        state["TimeoutSeconds"]
        for state in states.values()
        if state.get("Resource", "").endswith(".waitForTaskToken")
        and "RunDiskToolFunctionArn" in json.dumps(state.get("Parameters", {}))
    ]
    assert waits
    assert max(waits) <= lost.LONGEST_COMMAND_WAIT_SECONDS


def _lose(world: Any, instance_id: str, state: str) -> None:
    instance = world.backend.get_instance(instance_id)
    if state == "terminated":
        instance.terminate()
    elif state == "stopped":
        instance.stop()
    else:
        instance._state.name = state


def test_our_volume_on_a_stopped_helper_is_detached_without_force_nor_waiting_for_commands(
    world: Any, lambda_context: Any, detaches: list[dict[str, Any]]
) -> None:
    volume_id = world.temporary_volume()
    world.attach(volume_id, "xvdf")
    _lose(world, world.helper_id, "stopped")

    with pytest.raises(CleanupPending):
        clean_up.handler(world.event("clean_up", volume=volume_id), lambda_context)

    assert detaches == [{"VolumeId": volume_id, "InstanceId": world.helper_id, "Force": False}]
    clean_up.handler(world.event("clean_up", volume=volume_id), lambda_context)
    assert world.volume(volume_id) is None


@pytest.mark.parametrize("state", ["stopping", "shutting-down"])
def test_our_volume_on_a_helper_going_down_waits_without_a_detach(
    world: Any, lambda_context: Any, detaches: list[dict[str, Any]], state: str
) -> None:
    volume_id = world.temporary_volume()
    world.attach(volume_id, "xvdf")
    _lose(world, world.helper_id, state)

    with pytest.raises(CleanupPending, match=f"{volume_id} is in-use"):
        clean_up.handler(world.event("clean_up", volume=volume_id), lambda_context)

    assert detaches == []


def test_our_volume_left_by_a_terminated_helper_is_deleted_and_nothing_else(
    world: Any, lambda_context: Any, detaches: list[dict[str, Any]]
) -> None:
    volume_id = world.temporary_volume()
    world.attach(volume_id, "xvdf")
    root = world.backend.get_instance(world.helper_id).block_device_mapping["/dev/sda1"].volume_id
    _lose(world, world.helper_id, "terminated")  # EC2 detaches both

    clean_up.handler(world.event("clean_up", volume=volume_id), lambda_context)

    assert detaches == []
    assert world.volume(volume_id) is None
    # Only ours: the helper's own volume, detached too (launched here without
    # DeleteOnTermination), is not the cleanup's to delete.
    assert world.volume(root) is not None


def test_the_sample_event_of_a_helper_nobody_waits_on_fails_nothing(
    world: Any, lambda_context: Any, tasks: WaitingTasks
) -> None:
    found = helper_lost.handler(world.event("helper_lost"), lambda_context)

    assert found == {"instance_id": world.helper_id, "state": "stopped", "waits": {}}
    assert tasks.answers == []


def _queue(ledger: Ledger, helper: str, holder: str, token: str, at_ms: int) -> None:
    ledger.queue_for_turn(helper, holder, token, at_ms, at_ms // 1000 + 3600)


@pytest.mark.parametrize(("state", "handed"), [("running", True), ("stopped", False)])
def test_a_turn_given_back_on_a_lost_helper_is_handed_to_nobody_and_its_line_told(
    world: Any, tasks: WaitingTasks, state: str, handed: bool
) -> None:
    ledger = _ledger()
    now_ms = int(time.time() * 1000)
    assert turns.take_turn(ledger, tasks, world.helper_id, "exec-a", "snap-a", 1, "token-a")
    _queue(ledger, world.helper_id, "exec-b|snap-b", "token-b", now_ms + 1)
    if state == "stopped":
        _lose(world, world.helper_id, "stopped")

    give_back_helper(Ec2(), ledger, tasks, world.helper_id, "exec-a", "snap-a", 1)

    answered = {token: (kind, body) for token, kind, body in tasks.answers}
    if handed:
        assert answered["token-b"][0] == "success"  # the next in line has the turn
    else:
        kind, cause = answered["token-b"]
        assert kind == "HelperLost"
        assert cause["errorMessage"] == (
            f"helper {world.helper_id} is stopped: choose another helper"
        )
        assert ledger.holders(world.helper_id) == {}
        assert ledger.waiter(world.helper_id, "exec-b|snap-b") is None
