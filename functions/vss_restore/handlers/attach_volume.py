"""Lambda: attach the temporary volume to the helper at a free Windows device name."""

from typing import Any

from vss_restore import steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.observability import observed
from vss_restore.state import INSTANCE_ID, VOLUME_ID, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    device = steps.attach_volume(
        Ec2(),
        text(event, "volume.volume_id", VOLUME_ID),
        text(event, "helper.instance_id", INSTANCE_ID),
    )
    return {"device": device}
