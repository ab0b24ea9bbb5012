"""One restore per snapshot, and at most N reverts per helper: the ledger's rules.

A restore waits for a helper's turn in a first-come line, one ledger item per waiter
holding its task token; whoever frees a turn hands it to the oldest waiter with
SendTaskSuccess. Nothing polls. The line is read through a DynamoDB index, which lags the
table: a waiter looks for a free turn itself once queued, and a giver who leaves a turn
free looks again once the index has caught up (`give_back_turn`).
"""

import json

from vss_restore import clock, tags
from vss_restore.aws.ledger import Ledger, Turns, Waiter
from vss_restore.aws.states import StepFunctions
from vss_restore.errors import HelperDraining, HelperLost, WaitedTooLong
from vss_restore.logic.resolve import ALREADY_VERIFIED, BEING_RESTORED

# A claim or a turn not given back within this long belongs to an execution that died.
CLAIM_LEASE_SECONDS = 24 * 3600
TURN_LEASE_SECONDS = 6 * 3600
# How long a restore may wait in line (MaxWaitHours): longer, it fails with WaitedTooLong.
DEFAULT_MAX_WAIT_SECONDS = 36 * 3600
# A place in line outlives the longest wait by a day, then DynamoDB's TTL drops it (a waiter
# whose execution died without its release).
WAITING_KEEP_SECONDS = 24 * 3600
# What a waiting "Take a turn on the helper" task gets when the turn is its own.
TURN_OUTPUT = {"turn": "taken"}
# Looks at the line per hand-over: each grants a turn, skips a dead token, or loses a race.
MAX_HANDOVER_LOOKS = 50
# Waiters read from the index per look: enough to pass the ones between two task attempts.
LINE_PAGE = 100
# `load` counts at most this many waiters per helper (one page of the keys-only index): past
# it, a helper is busy enough for the choice.
MAX_COUNTED_WAITERS = 1000
# How long a giver who left a turn free waits before it looks at the line again. A GSI
# "propagates ... typically within a fraction of a second" (DynamoDB Developer Guide, "Using
# Global Secondary Indexes in DynamoDB", "Data synchronization"): twice the simulator's
# 0.5 s. A waiter the index shows later still finds its turn at its task's next attempt.
INDEX_CATCH_UP_SECONDS = 1.0


def _epoch() -> int:
    return int(clock.now().timestamp())


def _epoch_ms() -> int:
    return int(clock.now().timestamp() * 1000)


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
    *,
    max_wait_seconds: int = DEFAULT_MAX_WAIT_SECONDS,
) -> bool:
    """Queue for one of the helper's `limit` turns; True if it is ours at once.

    Our task completes (SendTaskSuccess on `task_token`) when the turn is ours: here, or
    later from whoever gives a turn back. Called again after the task timed out, with a
    new token, it keeps our place in line; past `max_wait_seconds` in line it gives the
    place up and raises WaitedTooLong.
    """
    me = holder(execution, snapshot_id)
    # First, so that an execution that dies while queued has its place freed by the release.
    ledger.note_helper(snapshot_id, execution, instance_id)
    if me in _turns(ledger, instance_id).holders:
        # A retried step, or a turn handed over while our previous task had timed out.
        ledger.stop_waiting(instance_id, me)
        return states.succeed(task_token, TURN_OUTPUT)
    now_ms = _epoch_ms()
    expires_at = now_ms // 1000 + max_wait_seconds + WAITING_KEEP_SECONDS
    queued = ledger.queue_for_turn(instance_id, me, task_token, now_ms, expires_at)
    waited_ms = now_ms - queued.queued_at
    if waited_ms > max_wait_seconds * 1000:
        ledger.note_aged_out(instance_id, me, snapshot_id, now_ms)
        ledger.stop_waiting(instance_id, me, task_token)
        raise WaitedTooLong(
            f"waited {waited_ms // 3_600_000} h in line for a turn on helper {instance_id}"
            f" (MaxWaitHours {max_wait_seconds // 3600}): its place is freed"
        )
    # Queued first, then looked, with our own place read from the item (the index may not
    # show it yet): a turn given back meanwhile cannot pass us by.
    if me in _hand_over(ledger, states, instance_id, limit, queued):
        return True
    turns = _turns(ledger, instance_id)
    waiter = ledger.waiter(instance_id, me)
    if me in turns.holders and waiter is not None and waiter.token == task_token:
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
    ledger.give_back_turn(instance_id, holder(execution, snapshot_id), _epoch())
    hand_over(ledger, states, instance_id, limit)
    if len(_turns(ledger, instance_id).holders) < limit:
        # A turn is still free: a waiter that queued a moment ago may not be in the index
        # yet, and may have looked before our turn was free. Look once more, later.
        clock.sleep(INDEX_CATCH_UP_SECONDS)
        hand_over(ledger, states, instance_id, limit)


def give_back_lost_turn(
    ledger: Ledger,
    states: StepFunctions,
    instance_id: str,
    execution: str,
    snapshot_id: str,
    why: str,
) -> list[str]:
    """Our turn on a helper that is lost (stopped or terminated): freed, handed to nobody;
    every restore in its line fails its wait with HelperLost and chooses another helper (the
    workflow's "Take a turn on the helper" catches it). Who was told.

    A waiter between a dead token and its task's next attempt (no token) only loses its
    place: that attempt queues anew and may find the dead helper's turns free; its restore
    then fails at its first step on the helper (docs/helpers.md)."""
    ledger.give_back_turn(instance_id, holder(execution, snapshot_id), _epoch())
    told = []
    for _, name in ledger.line(instance_id, LINE_PAGE):
        waiter = ledger.waiter(instance_id, name)
        if waiter is None:
            continue
        if waiter.token:
            message = f"helper {instance_id} {why}: choose another helper"
            cause = json.dumps({"errorType": HelperLost.__name__, "errorMessage": message})
            states.fail(waiter.token, HelperLost.__name__, cause)
            told.append(name)
        ledger.stop_waiting(instance_id, name, waiter.token)
    return told


def send_line_elsewhere(
    ledger: Ledger, states: StepFunctions, instance_id: str, why: str
) -> list[str]:
    """The helper drains (past HelperMaxHours, logic/fleet.py `retirement`): each restore in
    its line fails its wait with HelperDraining and chooses another helper (the workflow's
    "Take a turn on the helper" catches it). Who was told. At most LINE_PAGE waiters a run:
    the next run of the schedule takes the rest, and a waiter with no live token (its task
    between two attempts) once its next attempt brings one.

    Each waiter's item is deleted first, on the condition that its token is the one read: a
    grant needs that item (`grant_turn` checks its token in the same transaction), so once it
    is gone nobody hands this waiter a turn here. A waiter that holds a turn (granted just
    now, before the delete) keeps it and runs here: the helper drains it."""
    holders = ledger.peek_turns(instance_id).holders
    removed: list[Waiter] = []
    for _, name in ledger.line(instance_id, LINE_PAGE):
        if name in holders:
            continue
        waiter = ledger.waiter(instance_id, name)
        # No token: its task is between two attempts; told at a later run, once it has one.
        if waiter is None or not waiter.token:
            continue
        if ledger.leave_line(instance_id, name, waiter.token):
            removed.append(waiter)
    # A grant that won the race against a delete shows in the turns now: that one runs here.
    holders = ledger.peek_turns(instance_id).holders
    told = []
    for waiter in removed:
        if waiter.holder in holders:
            continue
        message = f"helper {instance_id} {why}: choose another helper"
        cause = json.dumps({"errorType": HelperDraining.__name__, "errorMessage": message})
        if states.fail(waiter.token, HelperDraining.__name__, cause):
            told.append(waiter.holder)
    return told


def hand_over(ledger: Ledger, states: StepFunctions, instance_id: str, limit: int) -> list[str]:
    """Give each free turn to the oldest waiter whose task still waits; who got one.

    It finds waiters through the `line` index: one queued within the index's lag (a fraction
    of a second) may not be seen yet."""
    return _hand_over(ledger, states, instance_id, limit, None)


def _hand_over(
    ledger: Ledger, states: StepFunctions, instance_id: str, limit: int, asker: Waiter | None
) -> list[str]:
    granted: list[str] = []
    passed: set[str] = set()  # waiters whose task is not waiting now (no token, or dead)
    for _ in range(MAX_HANDOVER_LOOKS):
        turns = _turns(ledger, instance_id)
        if len(turns.holders) >= limit:
            break
        waiter = _next_in_line(ledger, instance_id, turns, passed, asker)
        if waiter is None:
            break
        lease_until = _epoch() + TURN_LEASE_SECONDS
        if not ledger.grant_turn(instance_id, waiter.holder, waiter.token, limit, lease_until):
            continue  # someone else moved first: look again
        if states.succeed(waiter.token, TURN_OUTPUT):
            ledger.stop_waiting(instance_id, waiter.holder, waiter.token)
            granted.append(waiter.holder)
        else:
            # Its execution is gone, or its task timed out and comes back with a new token.
            ledger.take_back_grant(instance_id, waiter.holder, waiter.token, lease_until)
            passed.add(waiter.holder)
    return granted


def _next_in_line(
    ledger: Ledger, instance_id: str, turns: Turns, passed: set[str], asker: Waiter | None
) -> Waiter | None:
    """The oldest waiter with a live token and no turn yet, as its item says now."""
    line = set(ledger.line(instance_id, LINE_PAGE))
    if asker is not None:
        line.add((asker.queued_at, asker.holder))
    for _, name in sorted(line):
        if name in turns.holders or name in passed:
            continue
        waiter = ledger.waiter(instance_id, name)  # the index may be behind the item
        if waiter is not None and waiter.token:
            return waiter
        passed.add(name)
    return None


def load(
    ledger: Ledger, instance_id: str, *, max_wait_seconds: int = DEFAULT_MAX_WAIT_SECONDS
) -> int:
    """How many restores hold or wait for one of the helper's turns, lapsed ones left out
    (reads only: choosing a helper must not write its item). Waiters are counted through
    the index, at most MAX_COUNTED_WAITERS of them."""
    turns = ledger.peek_turns(instance_id)
    now = _epoch()
    held = {h for h, until in turns.holders.items() if until >= now}
    since_ms = (now - max_wait_seconds) * 1000
    return len(held) + ledger.count_line(instance_id, since_ms, MAX_COUNTED_WAITERS)


def last_freed(ledger: Ledger, instance_id: str) -> int:
    """When a turn on the helper was last given back (epoch s; 0: never), read only."""
    return ledger.peek_turns(instance_id).freed_at


def _turns(ledger: Ledger, instance_id: str) -> Turns:
    return ledger.turns(instance_id, _epoch())
