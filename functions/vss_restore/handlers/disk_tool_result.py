"""Lambda: one look at the disk tool's command; once it has ended, its validated report."""

from typing import Any

from vss_restore import steps
from vss_restore.aws.ssm import Ssm
from vss_restore.errors import InvalidRequest
from vss_restore.logic import disk_tool
from vss_restore.observability import observed
from vss_restore.state import COMMAND_ID, INSTANCE_ID, VOLUME_ID, optional, text

WAITS = {disk_tool.INSPECT: "inspect", disk_tool.REVERT: "revert", disk_tool.CHECK: "check"}


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = text(event, "action")
    if action not in WAITS:
        raise InvalidRequest(f"unknown disk tool action {action!r}")
    what = WAITS[action]
    progress, report = steps.disk_tool_progress(
        Ssm(),
        what,
        action,
        text(event, "command_id", COMMAND_ID),
        text(event, "instance_id", INSTANCE_ID),
        text(event, "volume_id", VOLUME_ID),
        optional(event, f"progress.{what}"),
    )
    return {**progress.as_dict(), "report": report}
