"""The line of restores waiting for a helper's turn: one item per waiter, found through an
index that lags the table (simulator/dynamodb.py), so 10,000 can wait and none is passed by."""

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from simulator.dynamodb import INDEX_LAG_SECONDS, LaggingIndexes
from simulator.patching import Patches
from tests.unit.conftest import LEDGER_TABLE, REGION
from vss_restore import clock, turns
from vss_restore.aws.ledger import Ledger, waiting_key
from vss_restore.errors import HelperDraining, WaitedTooLong
from vss_restore.logic.reconciliation import aged_out_alert

FREED_AT = 1_764_000_000  # when a test gives a turn back (epoch s)

HELPER = "i-0abc1234def567890"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:RestoreStateMachine:restore"
# A real task token is an opaque string of about 2,200 characters (the old one-item line
# held about 173 of them in 400 KB): the waiters here carry tokens that long.
TOKEN_LENGTH = 2200
# DynamoDB's item size limit (Developer Guide, "Service, account, and table quotas").
ITEM_LIMIT_BYTES = 400 * 1024
N_WAITERS = 10_000


class TaskTokens:
    """Step Functions' side of SendTaskSuccess: which tokens were completed; some are dead."""

    def __init__(self) -> None:
        self.completed: list[str] = []
        self.failed: dict[str, tuple[str, str]] = {}  # token -> (error, cause)
        self.dead: set[str] = set()

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        if token in self.dead or token in self.completed or token in self.failed:
            return False  # TaskTimedOut: the task waits no more
        self.completed.append(token)
        return True

    def fail(self, token: str, error: str, cause: str) -> bool:
        if token in self.dead or token in self.completed or token in self.failed:
            return False
        self.failed[token] = (error, cause)
        return True


class Time:
    """The handlers' clock, moved by the test (and by a handler's own sleep)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.moment = clock.now()
        monkeypatch.setattr(clock, "now", lambda: self.moment)
        monkeypatch.setattr(clock, "sleep", self.passes)

    def passes(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def time_(world: Any, monkeypatch: pytest.MonkeyPatch) -> Time:
    return Time(monkeypatch)


@pytest.fixture
def lagging(time_: Time) -> Iterator[None]:
    """The `line` index lags the table by the simulator's 0.5 s."""
    patches = Patches()
    LaggingIndexes(clock.now).install(patches)
    yield
    patches.close()


@pytest.fixture
def ledger(world: Any, lagging: None) -> Ledger:
    return Ledger(LEDGER_TABLE, client=boto3.client("dynamodb", region_name=REGION))


@pytest.fixture
def tokens() -> TaskTokens:
    return TaskTokens()


def token(n: int, attempt: int = 0) -> str:
    return f"token-{n}" + (f".{attempt}" if attempt else "")


def ask(
    ledger: Ledger, tokens: TaskTokens, n: int, limit: int = 1, attempt: int = 0, **kw: Any
) -> bool:
    return turns.take_turn(
        ledger,
        tokens,  # type: ignore[arg-type]
        HELPER,
        f"{EXECUTION}-{n}",
        f"snap-0{n}",
        limit,
        token(n, attempt),
        **kw,
    )


def give_back(ledger: Ledger, tokens: TaskTokens, n: int, limit: int = 1) -> None:
    turns.give_back_turn(ledger, tokens, HELPER, f"{EXECUTION}-{n}", f"snap-0{n}", limit)  # type: ignore[arg-type]


# --- the index lags, as on AWS -------------------------------------------------------------


def test_a_waiter_just_queued_is_not_in_the_index_until_it_catches_up(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    ask(ledger, tokens, 1)
    ask(ledger, tokens, 2)

    assert ledger.line(HELPER, 10) == []
    time_.passes(INDEX_LAG_SECONDS)
    assert [name for _, name in ledger.line(HELPER, 10)] == [f"{EXECUTION}-2|snap-02"]


def test_a_hand_over_within_the_lag_does_not_see_the_new_waiter(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    """Why the waiter and the giver each look again: the index alone would miss it."""
    ask(ledger, tokens, 1)
    ask(ledger, tokens, 2)
    ledger.give_back_turn(HELPER, f"{EXECUTION}-1|snap-01", FREED_AT)

    assert turns.hand_over(ledger, tokens, HELPER, 1) == []  # type: ignore[arg-type]


# --- nobody is passed by ---------------------------------------------------------------------


def test_a_turn_given_back_while_the_new_waiter_is_not_in_the_index_still_reaches_it(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    ask(ledger, tokens, 1)
    assert not ask(ledger, tokens, 2)  # looked: the turn was held

    give_back(ledger, tokens, 1)  # at once: the index does not show restore 2 yet

    assert tokens.completed == [token(1), token(2)]


def test_a_waiter_queued_after_the_turn_came_free_takes_it_itself(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    ask(ledger, tokens, 1)
    # nobody in line to hand it to
    ledger.give_back_turn(HELPER, f"{EXECUTION}-1|snap-01", FREED_AT)

    assert ask(ledger, tokens, 2)  # not in the index yet: it reads its own place
    assert tokens.completed == [token(1), token(2)]


def test_the_oldest_waiter_gets_the_turn_even_when_a_newer_one_looks_first(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    ask(ledger, tokens, 1)
    ask(ledger, tokens, 2)
    time_.passes(1)
    ledger.give_back_turn(HELPER, f"{EXECUTION}-1|snap-01", FREED_AT)

    assert not ask(ledger, tokens, 3)  # restore 2 is older, and in the index by now
    assert tokens.completed == [token(1), token(2)]


def test_a_long_line_is_served_in_order_under_the_lag(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    for n in range(1, 31):
        ask(ledger, tokens, n)
        time_.passes(0.1)  # they arrive faster than the index catches up
    for n in range(1, 31):
        give_back(ledger, tokens, n)

    assert tokens.completed == [token(n) for n in range(1, 31)]


def test_a_dead_token_is_passed_and_the_retry_keeps_its_place(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    for n in (1, 2, 3):
        ask(ledger, tokens, n)
        time_.passes(1)
    tokens.dead.add(token(2))  # restore 2's task timed out; its retry is on its way

    give_back(ledger, tokens, 1)
    assert tokens.completed == [token(1), token(3)]
    ask(ledger, tokens, 2, attempt=1)
    give_back(ledger, tokens, 3)

    assert tokens.completed == [token(1), token(3), token(2, 1)]


# --- the fleet's pattern: wait on a helper still booting, then hand over -------------------


def test_restores_queued_with_no_turn_are_all_granted_oldest_first_once_the_helper_is_ready(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    """A helper still booting has no turns (limit 0): restores wait on it; once it is ready,
    hand_over with the real limit grants every turn to the oldest waiters, in order."""
    for n in range(1, 6):
        assert not ask(ledger, tokens, n, limit=0)
        time_.passes(2)
    assert tokens.completed == []
    time_.passes(300)  # the helper boots

    granted = turns.hand_over(ledger, tokens, HELPER, 3)  # type: ignore[arg-type]

    assert granted == [f"{EXECUTION}-{n}|snap-0{n}" for n in (1, 2, 3)]
    assert tokens.completed == [token(1), token(2), token(3)]
    give_back(ledger, tokens, 2, limit=3)
    assert tokens.completed[3:] == [token(4)]


# --- waiting past the morning, and no longer than MaxWaitHours --------------------------------


def test_a_restore_waits_past_twelve_hours_and_keeps_its_place(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    """60 restores on one helper, 15 minutes each: the last waits almost 15 h, its task
    timing out every 900 s and asking again with a new token, and still gets its turn."""
    for n in range(1, 61):
        ask(ledger, tokens, n)
        time_.passes(0.01)
    last = 60
    for attempt in range(1, 60):
        time_.passes(900)
        tokens.dead.add(token(last, attempt - 1))  # its task timed out: a new attempt asks
        assert not ask(ledger, tokens, last, attempt=attempt)
        give_back(ledger, tokens, attempt)

    assert tokens.completed == [token(n) for n in range(1, 60)] + [token(last, 59)]
    assert ledger.waiter(HELPER, f"{EXECUTION}-{last}|snap-0{last}") is None


def test_a_restore_in_line_longer_than_max_wait_fails_and_frees_its_place(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    ask(ledger, tokens, 1)
    ask(ledger, tokens, 2, max_wait_seconds=36 * 3600)
    time_.passes(36 * 3600 + 900)

    with pytest.raises(WaitedTooLong, match="waited 36 h in line"):
        ask(ledger, tokens, 2, attempt=1, max_wait_seconds=36 * 3600)
    time_.passes(1)  # the reconciliation reads the notes through the index

    assert ledger.waiter(HELPER, f"{EXECUTION}-2|snap-02") is None
    assert ledger.aged_out(10) == ["snap-02"]
    assert turns.load(ledger, HELPER, max_wait_seconds=36 * 3600) == 0  # its lease lapsed


def test_the_aged_out_alert_names_every_snapshot_once() -> None:
    alert = aged_out_alert(["snap-01", "snap-02"], max_wait_hours=36)

    assert "2 restore(s)" in alert.subject
    assert "MaxWaitHours (36 h)" in alert.message
    assert alert.message.count("snap-01") == 1
    assert alert.message.count("snap-02") == 1


# --- a helper past HelperMaxHours drains: its line goes elsewhere ----------------------------


DRAINS = "is past HelperMaxHours 12 and drains"


def holder_of(n: int) -> str:
    return f"{EXECUTION}-{n}|snap-0{n}"


def send_elsewhere(ledger: Ledger, tokens: TaskTokens) -> list[str]:
    return turns.send_line_elsewhere(ledger, tokens, HELPER, DRAINS)  # type: ignore[arg-type]


def test_a_draining_helpers_waiters_fail_with_helper_draining_and_its_holder_keeps_its_turn(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    for n in (1, 2, 3):
        ask(ledger, tokens, n)  # restore 1 holds the turn, 2 and 3 wait
    time_.passes(1)

    told = send_elsewhere(ledger, tokens)

    assert told == [holder_of(2), holder_of(3)]
    assert tokens.completed == [token(1)]
    for n in (2, 3):
        error, cause = tokens.failed[token(n)]
        assert error == HelperDraining.__name__ == "HelperDraining"
        assert f"helper {HELPER} {DRAINS}: choose another helper" in cause
        assert ledger.waiter(HELPER, holder_of(n)) is None  # its place is gone
    assert token(1) not in tokens.failed
    assert holder_of(1) in ledger.peek_turns(HELPER).holders
    # The holder finishes: nobody is left to hand the turn to, and the helper is idle.
    give_back(ledger, tokens, 1)
    time_.passes(1)
    assert tokens.completed == [token(1)]
    assert turns.load(ledger, HELPER) == 0


def test_a_waiter_granted_a_turn_before_its_place_is_deleted_runs_there_and_is_not_failed(
    ledger: Ledger, tokens: TaskTokens, time_: Time, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hand-over's grant (the helper's turns and the waiter's token, in one transaction)
    lands between the retirement's read of the turns and its delete of the waiter's item."""
    ask(ledger, tokens, 1)
    ask(ledger, tokens, 2)
    time_.passes(1)
    leave_line = ledger.leave_line

    def granted_first(instance_id: str, name: str, task_token: str) -> bool:
        if name == holder_of(2):
            ledger.give_back_turn(HELPER, holder_of(1), FREED_AT)  # restore 1 is done
            assert ledger.grant_turn(HELPER, name, task_token, 1, 2**31)
        return leave_line(instance_id, name, task_token)

    monkeypatch.setattr(ledger, "leave_line", granted_first)

    assert send_elsewhere(ledger, tokens) == []
    assert tokens.failed == {}
    assert holder_of(2) in ledger.peek_turns(HELPER).holders  # it runs on the draining helper


def test_a_waiter_holding_a_turn_before_the_retirement_looks_is_left_alone(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    ask(ledger, tokens, 1)
    time_.passes(1)
    # Granted, its task not told yet: its place in line is still there.
    ledger.give_back_turn(HELPER, holder_of(1), FREED_AT)
    ledger.queue_for_turn(
        HELPER, holder_of(2), token(2), int(time_.moment.timestamp() * 1000), 2**31
    )
    assert ledger.grant_turn(HELPER, holder_of(2), token(2), 1, 2**31)
    time_.passes(1)

    assert send_elsewhere(ledger, tokens) == []
    assert ledger.waiter(HELPER, holder_of(2)) is not None
    assert tokens.failed == {}


def test_a_waiter_between_two_attempts_is_told_once_its_next_attempt_queues(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    ask(ledger, tokens, 1)
    ask(ledger, tokens, 2)
    time_.passes(1)
    waiter = ledger.waiter(HELPER, holder_of(2))
    assert waiter is not None
    # A hand-over to its dead token was taken back: in line, with no token for now.
    assert ledger.grant_turn(HELPER, holder_of(2), token(2), 2, 2**31)
    ledger.take_back_grant(HELPER, holder_of(2), token(2), 2**31)

    assert send_elsewhere(ledger, tokens) == []
    assert ledger.waiter(HELPER, holder_of(2)) is not None  # kept: nobody to tell yet
    ask(ledger, tokens, 2, attempt=1)
    time_.passes(1)
    assert send_elsewhere(ledger, tokens) == [holder_of(2)]
    assert tokens.failed[token(2, 1)][0] == "HelperDraining"


def test_the_retirement_reads_at_most_a_hundred_waiters_a_run(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    now_ms = int(time_.moment.timestamp() * 1000)
    ledger.turns(HELPER, now_ms // 1000)
    for n in range(150):
        ledger.queue_for_turn(HELPER, holder_of(n), token(n), now_ms + n, 2**31)
    time_.passes(1)

    first = send_elsewhere(ledger, tokens)
    time_.passes(1)
    second = send_elsewhere(ledger, tokens)

    assert turns.LINE_PAGE == 100
    assert first == [holder_of(n) for n in range(100)]  # the oldest first
    assert second == [holder_of(n) for n in range(100, 150)]
    time_.passes(1)  # the index catches up with the deletes
    assert turns.load(ledger, HELPER) == 0


# --- load counts through the index, bounded ---------------------------------------------------


def test_load_counts_the_holders_and_the_waiters(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    for n in range(1, 5):
        ask(ledger, tokens, n, limit=2)
    time_.passes(1)

    assert turns.load(ledger, HELPER) == 4


# --- 10,000 waiters: no item grows with the line ---------------------------------------------


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it (Developer Guide, "Item sizes and formats"):
    each attribute's name plus its value (strings in UTF-8 bytes, numbers about one byte
    per two digits plus one, maps 3 bytes plus their contents plus one per element)."""

    def value(v: dict[str, Any]) -> int:
        [(kind, inner)] = v.items()
        if kind == "S":
            return len(str(inner).encode())
        if kind == "N":
            return (len(str(inner).lstrip("-").replace(".", "")) + 1) // 2 + 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + value(x) + 1 for k, x in inner.items())
        raise AssertionError(f"unexpected type {kind}")

    return sum(len(name.encode()) + value(v) for name, v in item.items())


def test_ten_thousand_waiters_fit_with_no_item_over_three_kilobytes(
    ledger: Ledger, tokens: TaskTokens, time_: Time
) -> None:
    started = time.monotonic()
    holders = [f"{EXECUTION}-{n:05d}|snap-{n:017x}" for n in range(N_WAITERS)]
    limit = 2
    now_ms = int(time_.moment.timestamp() * 1000)
    ledger.turns(HELPER, now_ms // 1000)
    for n, name in enumerate(holders):
        ledger.queue_for_turn(HELPER, name, f"{n:05d}".ljust(TOKEN_LENGTH, "t"), now_ms + n, 2**31)
    for name in holders[:limit]:
        assert ledger.grant_turn(HELPER, name, ledger.waiter(HELPER, name).token, limit, 2**31)  # type: ignore[union-attr]
        ledger.stop_waiting(HELPER, name)
    time_.passes(1)

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(LEDGER_TABLE)
    sizes = {
        str(key.value): item_size(item.to_json()["Attributes"]) for key, item in table.items.items()
    }
    largest = max(sizes.values())
    print(
        f"10,000 waiters: {len(sizes)} items, the largest {largest} bytes,"
        f" the helper's {sizes['helper#' + HELPER]} bytes, in {time.monotonic() - started:.1f} s"
    )

    assert len([k for k in sizes if k.startswith(waiting_key(HELPER, ""))]) == N_WAITERS - limit
    assert largest <= 2.7 * 1024 < ITEM_LIMIT_BYTES
    assert sizes["helper#" + HELPER] < 1024  # two holders, however long the line
    assert turns.load(ledger, HELPER) == limit + turns.MAX_COUNTED_WAITERS
    # The line still works at that length: the oldest waiter gets the next turn.
    ledger.give_back_turn(HELPER, holders[0], FREED_AT)
    assert turns.hand_over(ledger, tokens, HELPER, limit) == [holders[limit]]  # type: ignore[arg-type]
