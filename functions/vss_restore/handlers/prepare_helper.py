"""Lambda: choose the Windows helper; refuse one that may not (the snapshot's own instance,
a backed-up server) or cannot (stopped, not Windows, not SSM-online) revert the snapshot.
HelperMode=fleet: a helper of the fleet, reused or launched (fleet.py)."""

from typing import Any

from vss_restore import fleet, steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.places import Places
from vss_restore.aws.ssm import Ssm
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import SNAPSHOT_ID, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    if settings.helper_mode == "fleet":
        return fleet.prepare(
            Ec2(),
            Ssm(),
            Ledger(settings.ledger_table),
            Places(settings.ledger_table),
            settings,
            execution=text(event, "execution"),
            snapshot_id=text(event, "source.snapshot_id", SNAPSHOT_ID),
            source_volume_id=str(optional(event, "source.source_volume_id") or ""),
        )
    helper = steps.prepare_helper(
        Ec2(),
        Ssm(),
        Ledger(settings.ledger_table),
        settings,
        snapshot_id=text(event, "source.snapshot_id", SNAPSHOT_ID),
        requested=str(optional(event, "request.helper_instance_id") or ""),
        backed_up_instance=str(optional(event, "source.instance_id") or ""),
        source_volume_id=str(optional(event, "source.source_volume_id") or ""),
    )
    return {**helper.as_dict(), "ready": True}
