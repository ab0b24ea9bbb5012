"""Lambda: is the helper the fleet launched for this restore SSM Online yet? One look of the
state machine's boot loop, bounded by HelperBootMinutes (then HelperNeverOnline)."""

from typing import Any

from vss_restore import fleet
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.places import Places
from vss_restore.aws.ssm import Ssm
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import INSTANCE_ID, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    instance_id = text(event, "helper.instance_id", INSTANCE_ID)
    ready = fleet.online(Ec2(), Ssm(), Places(settings.ledger_table), settings, instance_id)
    return {
        "instance_id": instance_id,
        "availability_zone": str(optional(event, "helper.availability_zone") or ""),
        "ready": ready,
    }
