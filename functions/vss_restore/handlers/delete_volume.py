"""Lambda: delete the temporary volume (only if it is ours), and its shared look's record."""

from typing import Any

from vss_restore import steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.looks import SharedLook
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import SNAPSHOT_ID, VOLUME_ID, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ec2 = Ec2()
    look = SharedLook(ec2, Ledger(Settings.from_environment().ledger_table))
    volume_id = text(event, "volume.volume_id", VOLUME_ID)
    steps.delete_volume(ec2, volume_id, text(event, "request.snapshot_id", SNAPSHOT_ID), look)
    look.forget(volume_id)
    return {}
