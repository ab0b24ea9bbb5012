"""A paced call's turn: take the action's next slot from the ledger's pacer, wait for it here
when it is close, else hand the wait to the state machine (logic/pacing.py)."""

from typing import Any

from vss_restore import clock
from vss_restore.aws.ledger import Ledger
from vss_restore.errors import SlotTooFar
from vss_restore.logic import pacing
from vss_restore.logic.pacing import Slot
from vss_restore.settings import Settings


def turn(
    ledger: Ledger,
    settings: Settings,
    action: str,
    held: Any,
    seconds_left: float,
) -> Slot | None:
    """None when the call may be made now (its slot has come, waited for in this
    invocation), else the slot the state machine waits for before it runs the step again
    with that slot `held` (no new slot is taken then): one Wait, at most MaxWaitHours long
    (SlotTooFar past it)."""
    now = clock.now().timestamp()
    at = _held(held)
    if at is None:
        at = ledger.take_slot(action, now, pacing.gap_seconds(settings.paced_rates[action]))
    wait = at - now
    if wait > settings.max_wait_hours * 3600:
        raise SlotTooFar(
            f"the next slot of {action} is {wait:,.0f} s off, past MaxWaitHours"
            f" ({settings.max_wait_hours} h): check its pace and its pacer (pace#{action})"
        )
    if wait <= 0:
        return None
    if pacing.waits_in_invocation(wait, seconds_left):
        clock.sleep(wait)
        return None
    return pacing.slot(at, now)


def _held(held: Any) -> float | None:
    """The slot this step was handed back with, waited for by the state machine; None on the
    step's first run (or anything that is not a slot)."""
    at = held.get("at") if isinstance(held, dict) else None
    if isinstance(at, bool) or not isinstance(at, int | float):
        return None
    return float(at)
