"""Lambda: give back the helper's turn once the volume is off it, to the next in line."""

from typing import Any

from vss_restore import turns
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.states import StepFunctions
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import INSTANCE_ID, SNAPSHOT_ID, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    turns.give_back_turn(
        Ledger(settings.ledger_table),
        StepFunctions(),
        text(event, "helper.instance_id", INSTANCE_ID),
        text(event, "execution"),
        text(event, "request.snapshot_id", SNAPSHOT_ID),
        settings.helper_concurrency,
    )
    return {}
