"""Lambda: claim the snapshot's restore in the ledger, so duplicate events restore it once."""

from typing import Any

from vss_restore import turns
from vss_restore.aws.ledger import Ledger
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import SNAPSHOT_ID, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reason = turns.claim_snapshot(
        Ledger(Settings.from_environment().ledger_table),
        text(event, "request.snapshot_id", SNAPSHOT_ID),
        text(event, "execution"),
        reverify=optional(event, "request.reverify") is True,
    )
    return {"claimed": not reason, "reason": reason}
