"""One restore per snapshot, and at most N reverts per helper: the ledger's rules.

A restore waits for a helper's turn in a first-come line of task tokens; whoever frees a
turn hands it to the oldest waiter with SendTaskSuccess. Nothing polls.
"""

from vss_restore import clock, tags
from vss_restore.aws.ledger import Ledger, Turns
from vss_restore.aws.states import StepFunctions
from vss_restore.logic.resolve import ALREADY_VERIFIED, BEING_RESTORED

# A claim or a turn not given back within this long belongs to an execution that died.
CLAIM_LEASE_SECONDS = 24 * 3600
TURN_LEASE_SECONDS = 6 * 3600
# A place in line older than this belongs to an execution that gave up: "Take a turn on the
# helper" waits at most 12 h (its TimeoutSeconds times its attempts).
WAITING_LEASE_SECONDS = 13 * 3600
# What a waiting "Take a turn on the helper" task gets when the turn is its own.
TURN_OUTPUT = {"turn": "taken"}
# Looks at the line per hand-over: each grants a turn, skips a dead token, or loses a race.
MAX_HANDOVER_LOOKS = 50


def _epoch() -> int:
    return int(clock.now().timestamp())


def claim_snapshot(ledger: Ledger, snapshot_id: str, execution: str, reverify: bool = False) -> str:
    """ "" when this execution now owns the snapshot's restore, else why it must skip.

    One restore per snapshot holds for re-verifications too: a verified snapshot may be
    claimed again by one, never while another execution holds a live claim on it."""
    claim = ledger.claim(snapshot_id, execution, _epoch(), CLAIM_LEASE_SECONDS, again=reverify)
    if claim.claimed:
        return ""
    return ALREADY_VERIFIED if claim.status == tags.VERIFIED else BEING_RESTORED


def holder(execution: str, snapshot_id: str) -> str:
    return f"{execution}|{snapshot_id}"


def take_turn(
    ledger: Ledger,
    states: StepFunctions,
    instance_id: str,
    execution: str,
    snapshot_id: str,
    limit: int,
    task_token: str,
) -> bool:
    """Queue for one of the helper's `limit` turns; True if it is ours at once.

    Our task completes (SendTaskSuccess on `task_token`) when the turn is ours: here, or
    later from whoever gives a turn back. Called again after the task timed out, with a
    new token, it keeps our place in line.
    """
    me = holder(execution, snapshot_id)
    # First, so that an execution that dies while queued has its place freed by the release.
    ledger.note_helper(snapshot_id, execution, instance_id)
    if me in _turns(ledger, instance_id).holders:
        # A retried step, or a turn handed over while our previous task had timed out.
        ledger.stop_waiting(instance_id, me)
        return states.succeed(task_token, TURN_OUTPUT)
    ledger.queue_for_turn(instance_id, me, task_token, int(clock.now().timestamp() * 1000))
    # Queued first, then looked: a turn given back meanwhile cannot pass us by.
    if me in hand_over(ledger, states, instance_id, limit):
        return True
    turns = _turns(ledger, instance_id)
    if me in turns.holders and me in turns.tokens:
        # Handed to our previous token while this call queued the new one: say it ourselves.
        ledger.stop_waiting(instance_id, me)
        return states.succeed(task_token, TURN_OUTPUT)
    return False


def give_back_turn(
    ledger: Ledger,
    states: StepFunctions,
    instance_id: str,
    execution: str,
    snapshot_id: str,
    limit: int,
) -> None:
    """Free our turn (or our place in line) and hand it to the oldest waiter."""
    _turns(ledger, instance_id)  # the helper's item as the ledger expects it
    ledger.give_back_turn(instance_id, holder(execution, snapshot_id))
    hand_over(ledger, states, instance_id, limit)


def hand_over(ledger: Ledger, states: StepFunctions, instance_id: str, limit: int) -> list[str]:
    """Give each free turn to the oldest waiter whose task still waits; who got one."""
    granted: list[str] = []
    for _ in range(MAX_HANDOVER_LOOKS):
        turns = _turns(ledger, instance_id)
        waiter = turns.next_in_line()
        if waiter is None or len(turns.holders) >= limit:
            break
        name, token = waiter
        lease_until = _epoch() + TURN_LEASE_SECONDS
        if not ledger.grant_turn(instance_id, name, token, limit, lease_until):
            continue  # someone else moved first: look again
        if states.succeed(token, TURN_OUTPUT):
            ledger.stop_waiting(instance_id, name, token)
            granted.append(name)
        else:
            # Its execution is gone, or its task timed out and comes back with a new token.
            ledger.take_back_grant(instance_id, name, token, lease_until)
    return granted


def load(ledger: Ledger, instance_id: str) -> int:
    """How many restores hold or wait for one of the helper's turns, lapsed ones left out
    (a read only: choosing a helper must not write its item)."""
    turns = ledger.peek_turns(instance_id)
    now = _epoch()
    held = {h for h, until in turns.holders.items() if until >= now}
    waiting = {
        h
        for h, since in turns.waiting.items()
        if since >= (now - WAITING_LEASE_SECONDS) * 1000 and h not in held
    }
    return len(held) + len(waiting)


def _turns(ledger: Ledger, instance_id: str) -> Turns:
    return ledger.turns(instance_id, _epoch(), WAITING_LEASE_SECONDS)
