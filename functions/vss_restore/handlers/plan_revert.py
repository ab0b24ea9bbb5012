"""Lambda: choose exactly the shadow copies to revert on the attached disk, and why."""

from typing import Any

from vss_restore.logic.plan import plan_revert
from vss_restore.observability import observed
from vss_restore.state import lookup, optional


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    plan = plan_revert(
        lookup(event, "report"),
        recorded_id=str(optional(event, "source.shadow_copy_id") or ""),
        recorded_set=str(optional(event, "source.shadow_set_id") or ""),
        drive_letters=str(optional(event, "source.drive_letters") or ""),
    )
    return plan.as_dict()
