"""Lambda (.waitForTaskToken): queue for one of the helper's turns; the turn comes by token."""

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
    taken = turns.take_turn(
        Ledger(settings.ledger_table),
        StepFunctions(),
        text(event, "helper.instance_id", INSTANCE_ID),
        text(event, "execution"),
        text(event, "request.snapshot_id", SNAPSHOT_ID),
        settings.helper_concurrency,
        text(event, "task_token"),
        max_wait_seconds=settings.max_wait_hours * 3600,
    )
    # Step Functions ignores this: the task's result is what SendTaskSuccess sent.
    return {"taken": taken}
