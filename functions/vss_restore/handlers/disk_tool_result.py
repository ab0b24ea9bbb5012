"""Lambda: one look at the disk tool's command; once it has ended, its validated report.

After a callback task timed out (its event lost), the command is the one the ledger keeps.
"""

from typing import Any

from vss_restore import callbacks, steps
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.ssm import Ssm
from vss_restore.errors import InvalidRequest
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import COMMAND_ID, INSTANCE_ID, VOLUME_ID, optional, text

WAITS = callbacks.WAITS


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = text(event, "action")
    if action not in WAITS:
        raise InvalidRequest(f"unknown disk tool action {action!r}")
    what = WAITS[action]
    volume_id = text(event, "volume_id", VOLUME_ID)
    previous = optional(event, f"progress.{what}")
    if optional(event, "command_id") is not None:
        command_id = text(event, "command_id", COMMAND_ID)
    else:
        ledger = Ledger(Settings.from_environment().ledger_table)
        waited = callbacks.command_waited_for(ledger, volume_id, action)
        if waited is None or not waited.operation:
            raise InvalidRequest(f"no {action} command of {volume_id} is known")
        command_id = waited.operation
        previous = previous or {"attempt": 0, "since": waited.since}
    progress, report = steps.disk_tool_progress(
        Ssm(),
        what,
        action,
        command_id,
        text(event, "instance_id", INSTANCE_ID),
        volume_id,
        previous,
    )
    return {**progress.as_dict(), "report": report}
