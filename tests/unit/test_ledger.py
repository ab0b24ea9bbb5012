"""One restore per snapshot and at most N per helper: the ledger's claims and turns."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import boto3
import pytest

from vss_restore import clock, tags, turns
from vss_restore.aws.ledger import Ledger
from vss_restore.errors import WaitTimedOut
from vss_restore.handlers import claim_snapshot, clean_up, give_back_turn, record_verdict, take_turn
from vss_restore.logic.resolve import ALREADY_VERIFIED, BEING_RESTORED

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:RestoreStateMachine:first"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:RestoreStateMachine:second"


@pytest.fixture
def ledger(world: Any) -> Ledger:
    return Ledger("vss-restore-unit-Ledger", client=boto3.client("dynamodb"))


def later(monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
    """Move the handlers' clock forward."""
    moment = clock.now() + timedelta(seconds=seconds)
    monkeypatch.setattr(clock, "now", lambda: moment)


# --- one restore per snapshot ---------------------------------------------------------


def test_the_first_execution_claims_the_snapshot(ledger: Ledger, world: Any) -> None:
    assert turns.claim_snapshot(ledger, world.snapshot_id, EXECUTION) == ""


def test_a_duplicate_execution_skips_a_snapshot_being_restored(ledger: Ledger, world: Any) -> None:
    turns.claim_snapshot(ledger, world.snapshot_id, EXECUTION)

    assert turns.claim_snapshot(ledger, world.snapshot_id, OTHER) == BEING_RESTORED


def test_a_retried_claim_of_the_same_execution_still_owns_it(ledger: Ledger, world: Any) -> None:
    turns.claim_snapshot(ledger, world.snapshot_id, EXECUTION)

    assert turns.claim_snapshot(ledger, world.snapshot_id, EXECUTION) == ""


def test_a_verified_snapshot_is_not_claimed_again(ledger: Ledger, world: Any) -> None:
    turns.claim_snapshot(ledger, world.snapshot_id, EXECUTION)
    ledger.finish(world.snapshot_id, EXECUTION, tags.VERIFIED)

    assert turns.claim_snapshot(ledger, world.snapshot_id, OTHER) == ALREADY_VERIFIED


def test_a_snapshot_whose_restore_failed_can_be_restored_again(ledger: Ledger, world: Any) -> None:
    turns.claim_snapshot(ledger, world.snapshot_id, EXECUTION)
    ledger.finish(world.snapshot_id, EXECUTION, tags.FAILED)

    assert turns.claim_snapshot(ledger, world.snapshot_id, OTHER) == ""


def test_a_claim_left_by_an_execution_that_died_lapses(
    ledger: Ledger, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns.claim_snapshot(ledger, world.snapshot_id, EXECUTION)
    later(monkeypatch, turns.CLAIM_LEASE_SECONDS + 1)

    assert turns.claim_snapshot(ledger, world.snapshot_id, OTHER) == ""


def test_only_the_owner_records_how_the_restore_ended(ledger: Ledger, world: Any) -> None:
    turns.claim_snapshot(ledger, world.snapshot_id, EXECUTION)

    ledger.finish(world.snapshot_id, OTHER, tags.FAILED)

    assert turns.claim_snapshot(ledger, world.snapshot_id, OTHER) == BEING_RESTORED


def test_twenty_concurrent_claims_of_one_snapshot_give_it_to_exactly_one(
    ledger: Ledger, world: Any
) -> None:
    executions = [f"{EXECUTION}-{n}" for n in range(20)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        reasons = list(
            pool.map(lambda e: turns.claim_snapshot(ledger, world.snapshot_id, e), executions)
        )

    assert reasons.count("") == 1
    assert reasons.count(BEING_RESTORED) == 19


def test_the_claims_of_an_execution_are_found_by_its_arn(ledger: Ledger, world: Any) -> None:
    turns.claim_snapshot(ledger, world.snapshot_id, EXECUTION)
    turns.take_turn(ledger, world.helper_id, EXECUTION, world.snapshot_id, 1, None)

    assert ledger.claims_of(EXECUTION) == [
        {"snapshot_id": world.snapshot_id, "status": "running", "helper": world.helper_id}
    ]
    assert ledger.claims_of(OTHER) == []


# --- turns on a helper ----------------------------------------------------------------


def test_a_helper_with_one_turn_makes_the_second_restore_wait(ledger: Ledger, world: Any) -> None:
    first = turns.take_turn(ledger, world.helper_id, EXECUTION, "snap-01", 1, None)
    second = turns.take_turn(ledger, world.helper_id, OTHER, "snap-02", 1, None)

    assert first.ready
    assert not second.ready
    assert second.wait_seconds > 0


def test_a_turn_given_back_goes_to_the_waiting_restore(ledger: Ledger, world: Any) -> None:
    turns.take_turn(ledger, world.helper_id, EXECUTION, "snap-01", 1, None)
    waiting = turns.take_turn(ledger, world.helper_id, OTHER, "snap-02", 1, None)

    turns.give_back_turn(ledger, world.helper_id, EXECUTION, "snap-01")

    assert turns.take_turn(ledger, world.helper_id, OTHER, "snap-02", 1, waiting.as_dict()).ready


def test_a_helper_with_two_turns_runs_two_restores(ledger: Ledger, world: Any) -> None:
    taken = [
        turns.take_turn(ledger, world.helper_id, f"{EXECUTION}-{n}", f"snap-0{n}", 2, None).ready
        for n in range(3)
    ]

    assert taken == [True, True, False]


def test_asking_again_for_a_turn_already_held_keeps_it(ledger: Ledger, world: Any) -> None:
    turns.take_turn(ledger, world.helper_id, EXECUTION, "snap-01", 1, None)

    assert turns.take_turn(ledger, world.helper_id, EXECUTION, "snap-01", 1, None).ready
    assert len(ledger.holders(world.helper_id)) == 1


def test_a_turn_never_given_back_lapses(
    ledger: Ledger, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns.take_turn(ledger, world.helper_id, EXECUTION, "snap-01", 1, None)
    later(monkeypatch, turns.TURN_LEASE_SECONDS + 1)

    assert turns.take_turn(ledger, world.helper_id, OTHER, "snap-02", 1, None).ready
    assert list(ledger.holders(world.helper_id)) == [turns.holder(OTHER, "snap-02")]


def test_waiting_for_a_turn_is_bounded(ledger: Ledger, world: Any) -> None:
    turns.take_turn(ledger, world.helper_id, EXECUTION, "snap-01", 1, None)
    waited_since = clock.iso(clock.now() - timedelta(hours=12))
    previous = {"attempt": 3, "since": waited_since}

    with pytest.raises(WaitTimedOut, match="helper_turn"):
        turns.take_turn(ledger, world.helper_id, OTHER, "snap-02", 1, previous)


def test_concurrent_requests_never_give_more_turns_than_the_limit(
    ledger: Ledger, world: Any
) -> None:
    def ask(n: int) -> bool:
        return turns.take_turn(
            ledger, world.helper_id, f"{EXECUTION}-{n}", f"snap-{n:02d}", 2, None
        ).ready

    with ThreadPoolExecutor(max_workers=8) as pool:
        taken = list(pool.map(ask, range(10)))

    assert taken.count(True) == 2
    assert len(ledger.holders(world.helper_id)) == 2


# --- the handlers, from their samples -------------------------------------------------


def test_the_claim_handler_claims_then_refuses_a_duplicate(world: Any, lambda_context: Any) -> None:
    event = world.event("claim_snapshot")
    duplicate = {**event, "execution": OTHER}

    assert claim_snapshot.handler(event, lambda_context) == {"claimed": True, "reason": ""}
    assert claim_snapshot.handler(duplicate, lambda_context) == {
        "claimed": False,
        "reason": BEING_RESTORED,
    }


def test_the_turn_handlers_take_and_give_back_the_helpers_turn(
    world: Any, lambda_context: Any, ledger: Ledger
) -> None:
    claim_snapshot.handler(world.event("claim_snapshot"), lambda_context)
    event = world.event("take_turn")

    taken = take_turn.handler(event, lambda_context)
    held = ledger.holders(world.helper_id)
    give_back_turn.handler(world.event("give_back_turn"), lambda_context)

    assert taken["ready"] is True
    assert list(held) == [turns.holder(event["execution"], world.snapshot_id)]
    assert ledger.holders(world.helper_id) == {}


def test_a_verified_restore_closes_its_claim(world: Any, lambda_context: Any) -> None:
    claim_snapshot.handler(world.event("claim_snapshot"), lambda_context)
    consistent = world.ec2.create_snapshot(VolumeId=world.temporary_volume())["SnapshotId"]

    record_verdict.handler(world.event("record_verdict", consistent=consistent), lambda_context)

    duplicate = {**world.event("claim_snapshot"), "execution": OTHER}
    assert claim_snapshot.handler(duplicate, lambda_context)["reason"] == ALREADY_VERIFIED


def test_a_failed_restore_closes_its_claim_and_gives_back_its_turn(
    world: Any, lambda_context: Any, ledger: Ledger
) -> None:
    claim_snapshot.handler(world.event("claim_snapshot"), lambda_context)
    take_turn.handler(world.event("take_turn"), lambda_context)

    clean_up.handler(world.event("clean_up", volume=world.temporary_volume()), lambda_context)

    assert ledger.holders(world.helper_id) == {}
    retry = {**world.event("claim_snapshot"), "execution": OTHER}
    assert claim_snapshot.handler(retry, lambda_context) == {"claimed": True, "reason": ""}
