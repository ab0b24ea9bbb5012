"""One restore per snapshot, and at most N reverts per helper: the ledger's rules."""

from vss_restore import clock, tags
from vss_restore.aws.ledger import Ledger
from vss_restore.logic.polling import Progress, next_progress
from vss_restore.logic.resolve import ALREADY_VERIFIED, BEING_RESTORED

# A claim or a turn not given back within this long belongs to an execution that died.
CLAIM_LEASE_SECONDS = 24 * 3600
TURN_LEASE_SECONDS = 6 * 3600


def _epoch() -> int:
    return int(clock.now().timestamp())


def claim_snapshot(ledger: Ledger, snapshot_id: str, execution: str) -> str:
    """ "" when this execution now owns the snapshot's restore, else why it must skip."""
    claim = ledger.claim(snapshot_id, execution, _epoch(), CLAIM_LEASE_SECONDS)
    if claim.claimed:
        return ""
    return ALREADY_VERIFIED if claim.status == tags.VERIFIED else BEING_RESTORED


def holder(execution: str, snapshot_id: str) -> str:
    return f"{execution}|{snapshot_id}"


def take_turn(
    ledger: Ledger,
    instance_id: str,
    execution: str,
    snapshot_id: str,
    limit: int,
    previous: dict[str, object] | None,
) -> Progress:
    """Our turn on the helper, or how long to wait before asking again."""
    taken = ledger.take_turn(
        instance_id, holder(execution, snapshot_id), limit, _epoch(), TURN_LEASE_SECONDS
    )
    if taken:
        ledger.note_helper(snapshot_id, execution, instance_id)
    return next_progress("helper_turn", previous, taken, clock.now())


def give_back_turn(ledger: Ledger, instance_id: str, execution: str, snapshot_id: str) -> None:
    ledger.give_back_turn(instance_id, holder(execution, snapshot_id))
