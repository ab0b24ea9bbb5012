"""Lambda: attach the temporary volume to the helper at a free Windows device name, at its
paced slot (pacing.py), and wait the few seconds until it is attached. A slot too far off is
handed back (`slot`): the state machine waits for it, then runs this step again."""

from typing import Any

from vss_restore import pacing, steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.logic.pacing import ATTACH_VOLUME
from vss_restore.looks import SharedLook
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import INSTANCE_ID, VOLUME_ID, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    volume_id = text(event, "volume.volume_id", VOLUME_ID)
    instance_id = text(event, "helper.instance_id", INSTANCE_ID)
    settings = Settings.from_environment()
    ledger = Ledger(settings.ledger_table)
    slot = pacing.turn(
        ledger,
        settings,
        ATTACH_VOLUME,
        optional(event, "attachment.slot"),
        context.get_remaining_time_in_millis() / 1000,
    )
    if slot is not None:
        return {"device": "", "attached": None, "slot": slot.as_dict()}
    ec2 = Ec2()
    device = steps.attach_volume(ec2, volume_id, instance_id)
    attached = steps.wait_for_volume(
        SharedLook(ec2, ledger),
        "volume_attached",
        volume_id,
        instance_id,
        context.get_remaining_time_in_millis() / 1000,
    )
    return {"device": device, "attached": attached.as_dict(), "slot": None}
