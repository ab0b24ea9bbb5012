"""Lambda: one look at the temporary volume: is it available, attached or detached yet?

The state machine's loop, for a volume still not there when the Lambda that started the
operation stopped waiting for it."""

from typing import Any

from vss_restore import steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.errors import InvalidRequest
from vss_restore.looks import SharedLook
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import INSTANCE_ID, VOLUME_ID, optional, text

WAITS = frozenset({"volume_available", "volume_attached", "volume_detached"})


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    what = text(event, "wait")
    if what not in WAITS:
        raise InvalidRequest(f"cannot wait for {what!r}")
    progress = steps.volume_progress(
        SharedLook(Ec2(), Ledger(Settings.from_environment().ledger_table)),
        what,
        text(event, "volume_id", VOLUME_ID),
        text(event, "instance_id", INSTANCE_ID),
        optional(event, "progress"),
    )
    return progress.as_dict()
