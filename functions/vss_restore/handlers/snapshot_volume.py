"""Lambda: snapshot the reverted volume as the consistent snapshot (once per execution).

Given the task's token, take CreateSnapshot's paced slot (pacing.py): a slot too far off
completes the task at once with it (`slot`), for the state machine to wait and run the step
again; else make the snapshot and keep the token for its completion event (callbacks.py).
"""

from typing import Any

from vss_restore import callbacks, pacing, steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.states import StepFunctions
from vss_restore.logic import resolve
from vss_restore.logic.pacing import CREATE_SNAPSHOT
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import SNAPSHOT_ID, VOLUME_ID, lookup, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    volume_id = text(event, "volume.volume_id", VOLUME_ID)
    source_snapshot_id = text(event, "request.snapshot_id", SNAPSHOT_ID)
    execution = text(event, "execution")
    shadow_copy_ids = list(lookup(event, "plan.shadow_copy_ids"))
    # The source's lineage (instance, drives, device, shadow set, backup time) goes on the
    # consistent snapshot; an execution started before it was kept has none.
    lineage = resolve.lineage(optional(event, "source") or {})
    token = optional(event, "task_token")
    if token:
        settings = Settings.from_environment()
        ledger = Ledger(settings.ledger_table)
        slot = pacing.turn(
            ledger,
            settings,
            CREATE_SNAPSHOT,
            optional(event, "consistent.slot"),
            context.get_remaining_time_in_millis() / 1000,
        )
        if slot is not None:
            StepFunctions().succeed(str(token), {"snapshot_id": "", "slot": slot.as_dict()})
            return {"slot": slot.as_dict()}
        snapshot_id = callbacks.snapshot_volume(
            Ec2(),
            ledger,
            StepFunctions(),
            volume_id,
            source_snapshot_id,
            execution,
            shadow_copy_ids,
            str(token),
            lineage,
        )
    else:
        snapshot_id = steps.snapshot_volume(
            Ec2(), volume_id, source_snapshot_id, execution, shadow_copy_ids, lineage
        )
    return {"snapshot_id": snapshot_id}
