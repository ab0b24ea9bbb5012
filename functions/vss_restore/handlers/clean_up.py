"""Lambda: the failure path: remove our temporary volume and mark the snapshot failed."""

from typing import Any

from vss_restore import cleanup
from vss_restore.aws.ec2 import Ec2
from vss_restore.observability import observed
from vss_restore.state import SNAPSHOT_ID, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return cleanup.clean_up(
        Ec2(),
        snapshot_id=text(event, "request.snapshot_id", SNAPSHOT_ID),
        volume_id=str(optional(event, "volume.volume_id") or ""),
        restoring=optional(event, "source.action") == "restore",
        error=optional(event, "error"),
        execution=text(event, "execution"),
    )
