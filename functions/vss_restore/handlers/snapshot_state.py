"""Lambda: one look at the consistent snapshot: is it completed yet?"""

from typing import Any

from vss_restore import steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.observability import observed
from vss_restore.state import SNAPSHOT_ID, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    progress = steps.snapshot_progress(
        Ec2(),
        text(event, "consistent.snapshot_id", SNAPSHOT_ID),
        optional(event, "progress.snapshot_completed"),
    )
    return progress.as_dict()
