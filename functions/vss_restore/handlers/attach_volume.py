"""Lambda: attach the temporary volume to the helper at a free Windows device name, and wait
the few seconds until it is attached."""

from typing import Any

from vss_restore import steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.looks import SharedLook
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import INSTANCE_ID, VOLUME_ID, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ec2 = Ec2()
    volume_id = text(event, "volume.volume_id", VOLUME_ID)
    instance_id = text(event, "helper.instance_id", INSTANCE_ID)
    device = steps.attach_volume(ec2, volume_id, instance_id)
    attached = steps.wait_for_volume(
        SharedLook(ec2, Ledger(Settings.from_environment().ledger_table)),
        "volume_attached",
        volume_id,
        instance_id,
        context.get_remaining_time_in_millis() / 1000,
    )
    return {"device": device, "attached": attached.as_dict()}
