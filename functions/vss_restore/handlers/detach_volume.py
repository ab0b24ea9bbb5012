"""Lambda: detach the temporary volume from the helper (only if it is ours)."""

from typing import Any

from vss_restore import steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.observability import observed
from vss_restore.state import INSTANCE_ID, SNAPSHOT_ID, VOLUME_ID, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    steps.detach_volume(
        Ec2(),
        text(event, "volume.volume_id", VOLUME_ID),
        text(event, "helper.instance_id", INSTANCE_ID),
        text(event, "request.snapshot_id", SNAPSHOT_ID),
    )
    return {}
