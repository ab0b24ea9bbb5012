"""Lambda, on a failed CreateSnapshot's event: fail the task that waits for that consistent
snapshot (succeeded events start an execution, whose resolve step completes it)."""

from typing import Any

from vss_restore import callbacks
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.states import StepFunctions
from vss_restore.logic.request import snapshot_id_of
from vss_restore.observability import logger, observed
from vss_restore.settings import Settings
from vss_restore.state import lookup


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    snapshot_id = snapshot_id_of(lookup(event, "detail.snapshot_id"))
    outcome = callbacks.snapshot_ended(
        Ec2(), Ledger(Settings.from_environment().ledger_table), StepFunctions(), snapshot_id
    )
    logger.info("snapshot failed", extra={"snapshot_id": snapshot_id, "outcome": outcome})
    return {"snapshot_id": snapshot_id, "outcome": outcome}
