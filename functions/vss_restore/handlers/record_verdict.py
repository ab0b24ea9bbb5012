"""Lambda: tag the source snapshot verified and return the restore's verdict."""

from typing import Any

from vss_restore import steps, tags
from vss_restore.aws.ec2 import Ec2
from vss_restore.observability import RESTORE_VERIFIED, count, observed
from vss_restore.state import SNAPSHOT_ID, lookup, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    snapshot_id = text(event, "request.snapshot_id", SNAPSHOT_ID)
    consistent = text(event, "consistent.snapshot_id", SNAPSHOT_ID)
    steps.record_verified(Ec2(), snapshot_id, consistent, text(event, "execution"))
    count(RESTORE_VERIFIED)
    kept = bool(optional(event, "request.keep_volume"))
    return {
        "snapshot_id": snapshot_id,
        "status": tags.VERIFIED,
        "reason": "",
        "consistent_snapshot": consistent,
        "shadow_copies_reverted": list(lookup(event, "plan.shadow_copy_ids")),
        "rule": text(event, "plan.rule"),
        "volume_kept": text(event, "volume.volume_id") if kept else "",
    }
