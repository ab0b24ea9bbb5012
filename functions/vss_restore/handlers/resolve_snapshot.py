"""Lambda: describe the snapshot and decide to restore it or skip it, with the reason."""

from typing import Any

from vss_restore import steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.observability import RESTORE_SKIPPED, count, observed
from vss_restore.settings import Settings
from vss_restore.state import SNAPSHOT_ID, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    snapshot_id = text(event, "request.snapshot_id", SNAPSHOT_ID)
    decision = steps.resolve(Ec2(), Settings.from_environment(), snapshot_id)
    if decision.action == "skip":
        count(RESTORE_SKIPPED)
    return decision.as_dict()
