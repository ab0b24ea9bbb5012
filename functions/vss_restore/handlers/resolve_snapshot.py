"""Lambda: describe the snapshot and decide to restore it or skip it, with the reason.

Our own consistent snapshot's event lands here too: it completes the task waiting for it
(or, for one a failed restore's cleanup deleted while pending, is skipped).
"""

from typing import Any

from vss_restore import callbacks, steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.states import StepFunctions
from vss_restore.logic.resolve import OWN_OUTPUT
from vss_restore.observability import RESTORE_SKIPPED, count, observed
from vss_restore.settings import Settings
from vss_restore.state import SNAPSHOT_ID, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    snapshot_id = text(event, "request.snapshot_id", SNAPSHOT_ID)
    settings = Settings.from_environment()
    ec2, ledger = Ec2(), Ledger(settings.ledger_table)
    decision = steps.resolve(
        ec2, ledger, settings, snapshot_id, reverify=optional(event, "request.reverify") is True
    )
    if decision.action == "skip":
        count(RESTORE_SKIPPED)
    if decision.reason == OWN_OUTPUT:
        callbacks.snapshot_ended(ec2, ledger, StepFunctions(), snapshot_id)
    return decision.as_dict()
