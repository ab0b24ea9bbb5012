"""Lambda: send the disk tool (Inspect, Revert or Check) to the helper through SSM Run Command.

Given the task's token, keep it for the command's event (callbacks.py).
"""

from typing import Any

from vss_restore import callbacks, steps
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.ssm import Ssm
from vss_restore.aws.states import StepFunctions
from vss_restore.errors import InvalidRequest
from vss_restore.logic import disk_tool
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import INSTANCE_ID, VOLUME_ID, lookup, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = text(event, "action")
    volume_id = text(event, "volume_id", VOLUME_ID)
    settings = Settings.from_environment()
    if action == disk_tool.INSPECT:
        parameters = disk_tool.parameters(action, volume_id)
    elif action == disk_tool.REVERT:
        parameters = disk_tool.parameters(
            action,
            volume_id,
            disk_number=int(lookup(event, "plan.disk_number")),
            shadow_copy_ids=tuple(lookup(event, "plan.shadow_copy_ids")),
            disk_identity=text(event, "plan.disk_identity"),
            # The fact the workflow's "Check after the revert?" choice reads ($.source.check),
            # not the setting read again here: the two could differ after a stack update.
            last_action=not _check_follows(event),
        )
    elif action == disk_tool.CHECK:
        parameters = disk_tool.parameters(
            action,
            volume_id,
            disk_number=int(lookup(event, "disk.number")),
            disk_identity=text(event, "disk.identity"),
            validation_script=settings.validation_script,
            last_action=True,
        )
    else:
        raise InvalidRequest(f"unknown disk tool action {action!r}")
    instance_id = text(event, "instance_id", INSTANCE_ID)
    execution = text(event, "execution")
    token = optional(event, "task_token")
    if token:
        command_id = callbacks.run_disk_tool(
            Ssm(),
            Ledger(settings.ledger_table),
            StepFunctions(),
            settings,
            instance_id,
            parameters,
            execution,
            str(token),
        )
    else:
        command_id = steps.run_disk_tool(Ssm(), settings, instance_id, parameters, execution)
    return {"command_id": command_id}


def _check_follows(event: dict[str, Any]) -> bool:
    follows = lookup(event, "check_follows")
    if not isinstance(follows, bool):
        raise InvalidRequest(f"check_follows must be true or false, not {follows!r}")
    return follows
