"""One restore per snapshot and at most N per helper: the ledger's claims and turns."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import boto3
import pytest

from vss_restore import clock, tags, turns
from vss_restore.aws.ledger import Ledger
from vss_restore.handlers import claim_snapshot, clean_up, give_back_turn, record_verdict, take_turn
from vss_restore.logic.resolve import ALREADY_VERIFIED, BEING_RESTORED

FREED_AT = 1_764_000_000  # when a test gives a turn back (epoch s)

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:RestoreStateMachine:first"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:RestoreStateMachine:second"


@pytest.fixture
def ledger(world: Any) -> Ledger:
    return Ledger(
        "vss-restore-unit-Ledger", client=_one_request_at_a_time(boto3.client("dynamodb"))
    )


def _one_request_at_a_time(client: Any) -> Any:
    """DynamoDB applies each request atomically (a conditional write sees the item as it is);
    moto's backend is not thread-safe, and under threads once gave a third turn with a limit
    of two ("dictionary changed size during iteration" inside moto). The askers still
    interleave freely between requests, which is what these tests are about."""
    lock = threading.Lock()
    call = client._make_api_call

    def atomic(operation: str, params: Any) -> Any:
        with lock:
            return call(operation, params)

    client._make_api_call = atomic
    return client


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


def test_a_reverification_may_claim_a_verified_snapshot_but_never_one_being_restored(
    ledger: Ledger, world: Any
) -> None:
    turns.claim_snapshot(ledger, world.snapshot_id, EXECUTION)
    assert turns.claim_snapshot(ledger, world.snapshot_id, OTHER, reverify=True) == (BEING_RESTORED)
    ledger.finish(world.snapshot_id, EXECUTION, tags.VERIFIED)

    assert turns.claim_snapshot(ledger, world.snapshot_id, OTHER) == ALREADY_VERIFIED
    assert turns.claim_snapshot(ledger, world.snapshot_id, OTHER, reverify=True) == ""
    assert turns.claim_snapshot(ledger, world.snapshot_id, EXECUTION, reverify=True) == (
        BEING_RESTORED
    )


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
    turns.take_turn(ledger, TaskTokens(), world.helper_id, EXECUTION, world.snapshot_id, 1, "t")  # type: ignore[arg-type]

    assert ledger.claims_of(EXECUTION) == [
        {"snapshot_id": world.snapshot_id, "status": "running", "helper": world.helper_id}
    ]
    assert ledger.claims_of(OTHER) == []


# --- turns on a helper: a first-come line of task tokens ---------------------------------


class TaskTokens:
    """Step Functions' side of SendTaskSuccess: which tokens were completed; some are dead."""

    def __init__(self) -> None:
        self.completed: list[str] = []
        self.dead: set[str] = set()

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        if token in self.dead or token in self.completed:
            return False  # TaskTimedOut: the task waits no more
        self.completed.append(token)
        return True


@pytest.fixture
def tokens() -> TaskTokens:
    return TaskTokens()


def ask(ledger: Ledger, tokens: TaskTokens, helper: str, n: int, limit: int = 1, attempt: int = 0):
    """Restore n (execution n, snap-0n) asks for a turn with its task token `token-n[.attempt]`."""
    token = f"token-{n}" + (f".{attempt}" if attempt else "")
    return turns.take_turn(
        ledger,
        tokens,
        helper,
        f"{EXECUTION}-{n}",
        f"snap-0{n}",
        limit,
        token,  # type: ignore[arg-type]
    )


def give_back(ledger: Ledger, tokens: TaskTokens, helper: str, n: int, limit: int = 1) -> None:
    turns.give_back_turn(ledger, tokens, helper, f"{EXECUTION}-{n}", f"snap-0{n}", limit)  # type: ignore[arg-type]


def test_a_free_turn_completes_the_askers_own_token_at_once(
    ledger: Ledger, world: Any, tokens: TaskTokens
) -> None:
    assert ask(ledger, tokens, world.helper_id, 1)
    assert tokens.completed == ["token-1"]
    assert list(ledger.holders(world.helper_id)) == [turns.holder(f"{EXECUTION}-1", "snap-01")]


def test_a_busy_helper_queues_the_token_and_completes_nothing(
    ledger: Ledger, world: Any, tokens: TaskTokens
) -> None:
    ask(ledger, tokens, world.helper_id, 1)

    assert not ask(ledger, tokens, world.helper_id, 2)
    assert tokens.completed == ["token-1"]


def test_a_turn_given_back_goes_to_the_oldest_waiter_first(
    ledger: Ledger, world: Any, tokens: TaskTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask(ledger, tokens, world.helper_id, 1)
    for n in (2, 3, 4):
        later(monkeypatch, n)
        ask(ledger, tokens, world.helper_id, n)

    for n in (1, 2, 3):
        give_back(ledger, tokens, world.helper_id, n)

    assert tokens.completed == ["token-1", "token-2", "token-3", "token-4"]


def test_a_retried_ask_keeps_its_place_in_line(
    ledger: Ledger, world: Any, tokens: TaskTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask(ledger, tokens, world.helper_id, 1)
    ask(ledger, tokens, world.helper_id, 2)
    later(monkeypatch, 5)
    ask(ledger, tokens, world.helper_id, 3)
    later(monkeypatch, 900)  # restore 2's task timed out: its retry queues a new token
    tokens.dead.add("token-2")
    ask(ledger, tokens, world.helper_id, 2, attempt=1)

    give_back(ledger, tokens, world.helper_id, 1)

    assert tokens.completed == ["token-1", "token-2.1"]


def test_a_dead_waiter_is_skipped_and_the_next_gets_the_turn(
    ledger: Ledger, world: Any, tokens: TaskTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask(ledger, tokens, world.helper_id, 1)
    ask(ledger, tokens, world.helper_id, 2)
    later(monkeypatch, 5)
    ask(ledger, tokens, world.helper_id, 3)
    tokens.dead.add("token-2")  # restore 2's execution was stopped while it waited

    give_back(ledger, tokens, world.helper_id, 1)

    assert tokens.completed == ["token-1", "token-3"]
    assert list(ledger.holders(world.helper_id)) == [turns.holder(f"{EXECUTION}-3", "snap-03")]


def test_a_hand_over_lost_after_its_grant_is_found_by_the_timeout_retry(
    ledger: Ledger, world: Any, tokens: TaskTokens
) -> None:
    ask(ledger, tokens, world.helper_id, 1)
    ask(ledger, tokens, world.helper_id, 2)
    second = turns.holder(f"{EXECUTION}-2", "snap-02")
    # Restore 1 gives back its turn; the hand-over grants it to restore 2, then dies
    # before SendTaskSuccess. Restore 2's task times out 15 minutes later and asks again.
    ledger.give_back_turn(world.helper_id, turns.holder(f"{EXECUTION}-1", "snap-01"), FREED_AT)
    assert ledger.grant_turn(world.helper_id, second, "token-2", 1, 2**40)
    tokens.dead.add("token-2")

    assert ask(ledger, tokens, world.helper_id, 2, attempt=1)
    assert tokens.completed == ["token-1", "token-2.1"]
    assert list(ledger.holders(world.helper_id)) == [second]


def test_a_helper_with_two_turns_runs_two_restores_and_hands_over_each(
    ledger: Ledger, world: Any, tokens: TaskTokens
) -> None:
    taken = [ask(ledger, tokens, world.helper_id, n, limit=2) for n in range(1, 5)]
    give_back(ledger, tokens, world.helper_id, 2, limit=2)

    assert taken == [True, True, False, False]
    assert tokens.completed == ["token-1", "token-2", "token-3"]
    assert len(ledger.holders(world.helper_id)) == 2


def test_asking_again_for_a_turn_already_held_keeps_it(
    ledger: Ledger, world: Any, tokens: TaskTokens
) -> None:
    ask(ledger, tokens, world.helper_id, 1)

    assert ask(ledger, tokens, world.helper_id, 1, attempt=1)
    assert len(ledger.holders(world.helper_id)) == 1


def test_giving_back_a_place_in_line_leaves_the_line(
    ledger: Ledger, world: Any, tokens: TaskTokens
) -> None:
    ask(ledger, tokens, world.helper_id, 1)
    ask(ledger, tokens, world.helper_id, 2)

    give_back(ledger, tokens, world.helper_id, 2)  # its cleanup, or the release of its execution
    give_back(ledger, tokens, world.helper_id, 1)

    assert tokens.completed == ["token-1"]
    assert ledger.holders(world.helper_id) == {}


def test_a_turn_never_given_back_lapses_to_the_next_in_line(
    ledger: Ledger, world: Any, tokens: TaskTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask(ledger, tokens, world.helper_id, 1)
    ask(ledger, tokens, world.helper_id, 2)
    later(monkeypatch, turns.TURN_LEASE_SECONDS + 1)

    assert ask(ledger, tokens, world.helper_id, 2, attempt=1)  # its task's timeout retry
    assert list(ledger.holders(world.helper_id)) == [turns.holder(f"{EXECUTION}-2", "snap-02")]


def test_concurrent_requests_never_give_more_turns_than_the_limit(
    ledger: Ledger, world: Any, tokens: TaskTokens
) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        taken = list(
            pool.map(lambda n: ask(ledger, tokens, world.helper_id, n, limit=2), range(10))
        )

    # Each hand-over may come from another asker's call: count the tokens completed.
    assert taken.count(True) <= 2
    assert len(tokens.completed) == 2
    assert sorted(ledger.holders(world.helper_id)) == sorted(
        turns.holder(
            f"{EXECUTION}-{token.removeprefix('token-')}", f"snap-0{token.removeprefix('token-')}"
        )
        for token in tokens.completed
    )


def test_concurrent_give_backs_hand_each_turn_to_one_waiter(
    ledger: Ledger, world: Any, tokens: TaskTokens
) -> None:
    for n in range(8):
        ask(ledger, tokens, world.helper_id, n, limit=2)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda n: give_back(ledger, tokens, world.helper_id, n, limit=2), (0, 1)))

    assert sorted(tokens.completed) == [f"token-{n}" for n in range(4)]
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

    assert taken == {"taken": True}
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
