"""Lambda, on EC2's "EC2 Instance State-change Notification" (stopping, stopped,
shutting-down, terminated): fail with HelperLost the restores waiting on a command there."""

from typing import Any

from vss_restore import lost
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.states import StepFunctions
from vss_restore.observability import logger, observed
from vss_restore.settings import Settings
from vss_restore.state import INSTANCE_ID, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    instance_id = text(event, "detail.instance-id", INSTANCE_ID)
    state = text(event, "detail.state")
    outcomes = lost.helper_lost(
        Ledger(Settings.from_environment().ledger_table),
        StepFunctions(),
        instance_id,
        state,
        str(event.get("time", "")),
    )
    if outcomes:
        logger.info(
            "helper lost",
            extra={"instance_id": instance_id, "state": state, "failed": len(outcomes)},
        )
    return {
        "instance_id": instance_id,
        "state": state,
        "waits": {o.wait: o.outcome for o in outcomes},
    }
