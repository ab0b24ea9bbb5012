"""Lambda: snapshot the reverted volume as the consistent snapshot (once per execution)."""

from typing import Any

from vss_restore import steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.observability import observed
from vss_restore.state import SNAPSHOT_ID, VOLUME_ID, lookup, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    snapshot_id = steps.snapshot_volume(
        Ec2(),
        text(event, "volume.volume_id", VOLUME_ID),
        text(event, "request.snapshot_id", SNAPSHOT_ID),
        text(event, "execution"),
        list(lookup(event, "plan.shadow_copy_ids")),
    )
    return {"snapshot_id": snapshot_id}
