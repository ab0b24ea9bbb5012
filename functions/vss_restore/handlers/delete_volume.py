"""Lambda: delete the temporary volume (only if it is ours)."""

from typing import Any

from vss_restore import steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.observability import observed
from vss_restore.state import SNAPSHOT_ID, VOLUME_ID, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    steps.delete_volume(
        Ec2(),
        text(event, "volume.volume_id", VOLUME_ID),
        text(event, "request.snapshot_id", SNAPSHOT_ID),
    )
    return {}
