"""Tasks that wait for a token: the disk tool's commands and the consistent snapshot are
completed by their events, with the output or the named error the polling path gives."""

import json
from typing import Any

import boto3
import pytest

from vss_restore import callbacks
from vss_restore.aws.ledger import Ledger, command_key, consistent_key
from vss_restore.errors import DiskToolReportInvalid
from vss_restore.handlers import (
    command_finished,
    disk_tool_result,
    resolve_snapshot,
    run_disk_tool,
    snapshot_failed,
    snapshot_volume,
)

from .conftest import LEDGER_TABLE

TOKEN = "token-of-the-waiting-task"


class WaitingTasks:
    """Step Functions' SendTaskSuccess/SendTaskFailure: a token answers once."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, str, Any]] = []

    def _answer(self, token: str, kind: str, body: Any) -> bool:
        if any(t == token for t, _, _ in self.answers):
            return False  # TaskTimedOut: the task was closed already
        self.answers.append((token, kind, body))
        return True

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        return self._answer(token, "success", output)

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._answer(token, error, json.loads(cause))


@pytest.fixture
def tasks(monkeypatch: pytest.MonkeyPatch) -> WaitingTasks:
    waiting = WaitingTasks()
    for module in (run_disk_tool, command_finished, snapshot_volume, snapshot_failed):
        monkeypatch.setattr(module, "StepFunctions", lambda: waiting)
    monkeypatch.setattr(resolve_snapshot, "StepFunctions", lambda: waiting)
    return waiting


def _ledger() -> Ledger:
    return Ledger(LEDGER_TABLE, boto3.client("dynamodb", region_name="us-east-1"))


def _inspect_with_token(world: Any, volume_id: str, token: str = TOKEN) -> dict[str, Any]:
    return {**world.event("run_disk_tool-inspect", volume=volume_id), "task_token": token}


def test_a_command_sent_for_a_waiting_task_keeps_its_token_and_goes_out_once_per_retry(
    world: Any, lambda_context: Any, tasks: WaitingTasks
) -> None:
    volume_id = world.temporary_volume()

    first = run_disk_tool.handler(_inspect_with_token(world, volume_id), lambda_context)
    retried = run_disk_tool.handler(_inspect_with_token(world, volume_id, "retry"), lambda_context)

    assert retried["command_id"] == first["command_id"]
    assert len(world.ssm.list_commands()["Commands"]) == 1
    waiting = _ledger().waiting(command_key(volume_id, "Inspect"))
    assert waiting is not None
    assert (waiting.token, waiting.operation) == ("retry", first["command_id"])


def test_the_commands_event_fails_the_task_with_the_error_polling_would_raise(
    world: Any, lambda_context: Any, tasks: WaitingTasks
) -> None:
    # moto ends every command at once, with no output: no report, as a crashed tool gives.
    volume_id = world.temporary_volume()
    command_id = run_disk_tool.handler(_inspect_with_token(world, volume_id), lambda_context)[
        "command_id"
    ]
    tasks.answers.clear()  # the look after sending saw it ended already; the event now

    outcome = command_finished.handler(
        world.event("command_finished", command=command_id), lambda_context
    )

    assert outcome["outcome"] == callbacks.FAILED
    [(token, error, cause)] = tasks.answers
    assert (token, error) == (TOKEN, "DiskToolReportInvalid")
    assert cause["errorType"] == "DiskToolReportInvalid"
    # Polling the same command names the same error.
    with pytest.raises(DiskToolReportInvalid):
        disk_tool_result.handler(
            world.event("disk_tool_result", volume=volume_id, command=command_id), lambda_context
        )


def test_a_duplicated_event_finds_the_task_closed(
    world: Any, lambda_context: Any, tasks: WaitingTasks
) -> None:
    volume_id = world.temporary_volume()
    command_id = run_disk_tool.handler(_inspect_with_token(world, volume_id), lambda_context)[
        "command_id"
    ]
    event = world.event("command_finished", command=command_id)

    outcomes = [command_finished.handler(event, lambda_context)["outcome"] for _ in range(2)]

    assert outcomes == [callbacks.CLOSED, callbacks.CLOSED]  # the look after sending answered
    assert len(tasks.answers) == 1


def test_a_command_without_our_comment_or_without_a_waiting_task_completes_nothing(
    world: Any, lambda_context: Any, tasks: WaitingTasks
) -> None:
    theirs = world.ssm.send_command(
        DocumentName="vss-restore-unit-DiskTool",
        InstanceIds=[world.helper_id],
        Comment="an operator's own run",
    )["Command"]["CommandId"]
    ours_without_token = run_disk_tool.handler(
        world.event("run_disk_tool-inspect", volume=world.temporary_volume()), lambda_context
    )["command_id"]

    outcomes = [
        command_finished.handler(world.event("command_finished", command=c), lambda_context)
        for c in (theirs, ours_without_token)
    ]

    assert [o["outcome"] for o in outcomes] == [callbacks.NOT_OURS, callbacks.NOBODY_WAITS]
    assert tasks.answers == []


def test_after_a_callback_timed_out_the_poll_finds_the_command_in_the_ledger(
    world: Any, lambda_context: Any, tasks: WaitingTasks
) -> None:
    volume_id = world.temporary_volume()
    command_id = run_disk_tool.handler(_inspect_with_token(world, volume_id), lambda_context)[
        "command_id"
    ]
    look = world.event("disk_tool_result", volume=volume_id)
    del look["command_id"]

    # The same command's (empty) report: found through the ledger, not "no command known".
    with pytest.raises(DiskToolReportInvalid, match="report"):
        disk_tool_result.handler(look, lambda_context)
    assert command_id


def test_the_consistent_snapshots_event_completes_the_task_with_its_id(
    world: Any, lambda_context: Any, tasks: WaitingTasks
) -> None:
    event = world.event("snapshot_volume", volume=world.temporary_volume())
    made = snapshot_volume.handler({**event, "task_token": TOKEN}, lambda_context)
    tasks.answers.clear()  # moto completes snapshots at once: the look after creating saw it

    resolve_snapshot.handler(
        {**world.event("resolve_snapshot"), "request": {"snapshot_id": made["snapshot_id"]}},
        lambda_context,
    )

    assert _ledger().waiting(consistent_key(made["snapshot_id"])) is not None
    assert tasks.answers == [(TOKEN, "success", {"snapshot_id": made["snapshot_id"], "slot": None})]


def test_a_failed_snapshot_event_for_no_waiting_task_completes_nothing(
    world: Any, lambda_context: Any, tasks: WaitingTasks
) -> None:
    outcome = snapshot_failed.handler(world.event("snapshot_failed"), lambda_context)

    assert outcome["outcome"] == callbacks.NOBODY_WAITS
    assert tasks.answers == []


def test_a_failed_event_for_a_snapshot_a_cleanup_deleted_while_pending_completes_nothing(
    world: Any, lambda_context: Any, tasks: WaitingTasks
) -> None:
    # The cleanup's record of a pending consistent snapshot it deleted holds no task token.
    failed = "snap-0fedcba9876543210"  # the sample event's snapshot
    _ledger().note_consistent_deleted(failed, "arn:aws:states:::execution:m:e", 1_800_000_000)

    outcome = snapshot_failed.handler(world.event("snapshot_failed"), lambda_context)

    assert outcome["outcome"] == callbacks.NOBODY_WAITS
    assert tasks.answers == []


def test_our_comment_names_the_action_and_volume_and_nothing_else_parses() -> None:
    from vss_restore.logic import disk_tool

    text = disk_tool.comment("Revert", "vol-0123456789abcdef0", "arn:x:execution:m:" + "n" * 90)

    assert len(text) == 100
    assert disk_tool.commented(text) == ("Revert", "vol-0123456789abcdef0")
    assert disk_tool.commented("vss-restore Format vol-0123456789abcdef0 x") is None
