"""Lambda: take one of the helper's turns, or say how long to wait for one."""

from typing import Any

from vss_restore import turns
from vss_restore.aws.ledger import Ledger
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import INSTANCE_ID, SNAPSHOT_ID, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    progress = turns.take_turn(
        Ledger(settings.ledger_table),
        text(event, "helper.instance_id", INSTANCE_ID),
        text(event, "execution"),
        text(event, "request.snapshot_id", SNAPSHOT_ID),
        settings.helper_concurrency,
        optional(event, "progress.helper_turn"),
    )
    return progress.as_dict()
