"""Tasks that wait for a token: the token kept in the ledger, the task completed by the event
that ends its operation, with the output or the named error the polling path gives."""

import json
from collections.abc import Callable
from typing import Any

from vss_restore import clock, steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger, Waiting, command_key, consistent_key
from vss_restore.aws.ssm import Ssm
from vss_restore.aws.states import StepFunctions
from vss_restore.errors import TransientError
from vss_restore.logic import disk_tool
from vss_restore.settings import Settings

# What each disk tool action is waited for as (logic/polling.py's policies).
WAITS = {disk_tool.INSPECT: "inspect", disk_tool.REVERT: "revert", disk_tool.CHECK: "check"}
# What a completion says happened, for the log and the tests.
COMPLETED = "completed"
FAILED = "failed"
RUNNING = "still running"
CLOSED = "the task had ended already"
NOBODY_WAITS = "no task waits for it"
NOT_OURS = "not a command of ours"
MAX_CAUSE = 4000


def run_disk_tool(
    ssm: Ssm,
    ledger: Ledger,
    states: StepFunctions,
    settings: Settings,
    instance_id: str,
    parameters: dict[str, list[str]],
    execution: str,
    token: str,
) -> str:
    """Send the command once per action and volume, and keep the task's token for its event."""
    action, volume_id = parameters["Action"][0], parameters["VolumeId"][0]
    key = command_key(volume_id, action)
    held = ledger.waiting(key)
    if held is not None and held.execution == execution and held.operation:
        # A retried task whose command went out: the same command, the new token.
        command_id, since = held.operation, held.since
    else:
        since = clock.iso(clock.now())
        command_id = steps.run_disk_tool(ssm, settings, instance_id, parameters, execution)
    ledger.wait_for(key, Waiting(token, execution, command_id, since), _epoch(), instance_id)
    # An event that came before the token was kept found no task: one look covers it.
    disk_tool_ended(ssm, ledger, states, action, volume_id, command_id, instance_id)
    return command_id


def command_ended(
    ssm: Ssm, ledger: Ledger, states: StepFunctions, command_id: str, instance_id: str
) -> str:
    """From SSM's event: complete the task that waits for this disk tool command."""
    invocation = ssm.invocation(command_id, instance_id)
    named = disk_tool.commented(str((invocation or {}).get("Comment", "")))
    if named is None:
        return NOT_OURS
    action, volume_id = named
    return disk_tool_ended(ssm, ledger, states, action, volume_id, command_id, instance_id)


def disk_tool_ended(
    ssm: Ssm,
    ledger: Ledger,
    states: StepFunctions,
    action: str,
    volume_id: str,
    command_id: str,
    instance_id: str,
) -> str:
    key = command_key(volume_id, action)
    waiting = ledger.waiting(key)
    if waiting is None or waiting.operation != command_id:
        return NOBODY_WAITS  # another restore's, a superseded command, or a token expired

    def result() -> dict[str, Any] | None:
        progress, report = steps.disk_tool_progress(
            ssm, WAITS[action], action, command_id, instance_id, volume_id, _started(waiting)
        )
        return {**progress.as_dict(), "report": report} if progress.ready else None

    outcome = _complete(states, waiting.token, result)
    if outcome != RUNNING:
        # The token is spent: a helper lost from now on has nothing here to fail.
        ledger.stop_indexing_wait(key, waiting.token)
    return outcome


def command_waited_for(ledger: Ledger, volume_id: str, action: str) -> Waiting | None:
    """The command a task waited for, for the polling that follows its timeout."""
    return ledger.waiting(command_key(volume_id, action))


def snapshot_volume(
    ec2: Ec2,
    ledger: Ledger,
    states: StepFunctions,
    volume_id: str,
    source_snapshot_id: str,
    execution: str,
    shadow_copy_ids: list[str],
    token: str,
    lineage: dict[str, str] | None = None,
) -> str:
    """The consistent snapshot, and the task's token kept for its completion event."""
    snapshot_id = steps.snapshot_volume(
        ec2, volume_id, source_snapshot_id, execution, shadow_copy_ids, lineage
    )
    since = clock.iso(clock.now())
    ledger.wait_for(
        consistent_key(snapshot_id), Waiting(token, execution, snapshot_id, since), _epoch()
    )
    snapshot_ended(ec2, ledger, states, snapshot_id)  # its event may have come already
    return snapshot_id


def snapshot_ended(ec2: Ec2, ledger: Ledger, states: StepFunctions, snapshot_id: str) -> str:
    """From the snapshot's event: complete the task that waits for our consistent snapshot."""
    waiting = ledger.waiting(consistent_key(snapshot_id))
    if waiting is None or not waiting.token:  # no token: deleted by a failed restore's cleanup
        return NOBODY_WAITS

    def result() -> dict[str, Any] | None:
        progress = steps.snapshot_progress(ec2, snapshot_id, None)
        # `slot` None: the snapshot was made (no paced slot handed back: snapshot_volume).
        return {"snapshot_id": snapshot_id, "slot": None} if progress.ready else None

    return _complete(states, waiting.token, result)


def _complete(
    states: StepFunctions, token: str, result: Callable[[], dict[str, Any] | None]
) -> str:
    """Success with the result, or failure with the error the polling path would raise.

    Transient errors (throttling) are raised instead: the event's Lambda is retried.
    """
    try:
        output = result()
    except TransientError:
        raise
    except Exception as exc:
        # The Cause a Lambda error has, so that the cleanup reads both alike.
        cause = json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)[:MAX_CAUSE]})
        return FAILED if states.fail(token, type(exc).__name__, cause) else CLOSED
    if output is None:
        return RUNNING
    return COMPLETED if states.succeed(token, output) else CLOSED


def _started(waiting: Waiting) -> dict[str, Any]:
    """The wait's progress so far: it began when the operation did."""
    return {"attempt": 0, "since": waiting.since}


def _epoch() -> int:
    return int(clock.now().timestamp())
