"""Lambda: tag the source snapshot verified and return the restore's verdict."""

from datetime import datetime
from typing import Any

from vss_restore import clock, steps, tags
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.logic.resolve import VERIFY
from vss_restore.observability import (
    RESTORE_DURATION,
    RESTORE_VERIFIED,
    count,
    observed,
    seconds,
)
from vss_restore.settings import Settings
from vss_restore.state import SNAPSHOT_ID, optional, text

VERIFY_ONLY = "verify-only: consistent already, checked"


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    snapshot_id = text(event, "request.snapshot_id", SNAPSHOT_ID)
    verify_only = optional(event, "source.action") == VERIFY
    # A snapshot that was consistent already is its own consistent snapshot.
    consistent = snapshot_id if verify_only else text(event, "consistent.snapshot_id", SNAPSHOT_ID)
    steps.record_verified(
        Ec2(),
        snapshot_id,
        consistent,
        text(event, "execution"),
        verify_only=verify_only,
        checked=optional(event, "source.check") is not False,
    )
    settings = Settings.from_environment()
    Ledger(settings.ledger_table).finish(snapshot_id, text(event, "execution"), tags.VERIFIED)
    count(RESTORE_VERIFIED)
    if started_at := optional(event, "source.started_at"):
        seconds(
            RESTORE_DURATION, (clock.now() - datetime.fromisoformat(started_at)).total_seconds()
        )
    kept = bool(optional(event, "request.keep_volume"))
    return {
        "snapshot_id": snapshot_id,
        "status": tags.VERIFIED,
        "reason": "",
        "consistent_snapshot": consistent,
        "shadow_copies_reverted": list(optional(event, "plan.shadow_copy_ids") or []),
        "rule": VERIFY_ONLY if verify_only else text(event, "plan.rule"),
        "volume_kept": text(event, "volume.volume_id") if kept else "",
    }
