"""Lambda: detach the temporary volume from the helper (only if it is ours), and wait the few
seconds until it is detached."""

from typing import Any

from vss_restore import steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.looks import SharedLook
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import INSTANCE_ID, SNAPSHOT_ID, VOLUME_ID, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ec2 = Ec2()
    look = SharedLook(ec2, Ledger(Settings.from_environment().ledger_table))
    volume_id = text(event, "volume.volume_id", VOLUME_ID)
    instance_id = text(event, "helper.instance_id", INSTANCE_ID)
    steps.detach_volume(
        ec2, volume_id, instance_id, text(event, "request.snapshot_id", SNAPSHOT_ID), look
    )
    detached = steps.wait_for_volume(
        look,
        "volume_detached",
        volume_id,
        instance_id,
        context.get_remaining_time_in_millis() / 1000,
    )
    return detached.as_dict()
