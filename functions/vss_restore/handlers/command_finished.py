"""Lambda, on SSM's "EC2 Command Invocation Status-change Notification": complete the task
that waits for that disk tool command."""

from typing import Any

from vss_restore import callbacks
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.ssm import Ssm
from vss_restore.aws.states import StepFunctions
from vss_restore.observability import logger, observed
from vss_restore.settings import Settings
from vss_restore.state import COMMAND_ID, INSTANCE_ID, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    command_id = text(event, "detail.command-id", COMMAND_ID)
    instance_id = text(event, "detail.instance-id", INSTANCE_ID)
    outcome = callbacks.command_ended(
        Ssm(),
        Ledger(Settings.from_environment().ledger_table),
        StepFunctions(),
        command_id,
        instance_id,
    )
    logger.info("command ended", extra={"command_id": command_id, "outcome": outcome})
    return {"command_id": command_id, "outcome": outcome}
