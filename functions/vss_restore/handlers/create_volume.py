"""Lambda: create the temporary volume from the snapshot in the helper's zone, tagged ours,
at its paced slot (pacing.py), and wait the few seconds until it is available. A slot too far
off is handed back (`slot`): the state machine waits for it, then runs this step again."""

from typing import Any

from vss_restore import pacing, steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.kms import Kms
from vss_restore.aws.ledger import Ledger
from vss_restore.logic.helper import Helper
from vss_restore.logic.pacing import CREATE_VOLUME
from vss_restore.looks import SharedLook
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import INSTANCE_ID, SNAPSHOT_ID, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    helper = Helper(
        text(event, "helper.instance_id", INSTANCE_ID), text(event, "helper.availability_zone")
    )
    settings = Settings.from_environment()
    ledger = Ledger(settings.ledger_table)
    slot = pacing.turn(
        ledger,
        settings,
        CREATE_VOLUME,
        optional(event, "volume.slot"),
        context.get_remaining_time_in_millis() / 1000,
    )
    if slot is not None:
        return {"volume_id": "", "available": None, "slot": slot.as_dict()}
    ec2 = Ec2()
    volume_id = steps.create_volume(
        ec2,
        Kms(),
        settings,
        text(event, "request.snapshot_id", SNAPSHOT_ID),
        helper,
        text(event, "execution"),
        kms_key_id=str(optional(event, "source.kms_key_id") or ""),
    )
    available = steps.wait_for_volume(
        SharedLook(ec2, ledger),
        "volume_available",
        volume_id,
        helper.instance_id,
        context.get_remaining_time_in_millis() / 1000,
    )
    return {"volume_id": volume_id, "available": available.as_dict(), "slot": None}
