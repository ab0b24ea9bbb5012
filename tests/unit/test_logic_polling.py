"""Bounded waits: growing, capped pauses and a firm end (logic/polling.py)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vss_restore.clock import iso
from vss_restore.errors import WaitTimedOut
from vss_restore.logic.polling import POLICIES, next_progress

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "restore.asl.json"
START = datetime(2026, 11, 25, 0, 5, tzinfo=UTC)
WHAT = "revert"


def _waits_in_the_state_machine() -> set[str]:
    """The names under $.progress that the workflow's poll tasks write."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            path = node.get("ResultPath")
            if isinstance(path, str) and path.startswith("$.progress."):
                found.add(path.removeprefix("$.progress."))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(ASL.read_text(encoding="utf-8")))
    return found


def test_the_state_machine_has_poll_loops() -> None:
    assert _waits_in_the_state_machine() >= {"volume_available", "revert"}


@pytest.mark.parametrize("what", sorted(_waits_in_the_state_machine()))
def test_every_wait_the_state_machine_runs_has_a_policy(what: str) -> None:
    progress = next_progress(what, None, False, START)

    assert (progress.ready, progress.attempt) == (False, 1)
    assert progress.wait_seconds == POLICIES[what].first_seconds


def test_the_first_look_starts_the_clock_and_waits_the_shortest_pause() -> None:
    progress = next_progress(WHAT, None, False, START)

    assert progress.as_dict() == {
        "ready": False,
        "attempt": 1,
        "since": iso(START),
        "wait_seconds": POLICIES[WHAT].first_seconds,
    }


def test_the_pause_doubles_after_each_look_and_stops_growing_at_the_longest() -> None:
    policy = POLICIES[WHAT]
    previous: dict[str, Any] | None = None
    waits = []
    for look in range(12):
        progress = next_progress(WHAT, previous, False, START + timedelta(minutes=look))
        waits.append(progress.wait_seconds)
        previous = progress.as_dict()

    assert waits[:3] == [policy.first_seconds, 2 * policy.first_seconds, 4 * policy.first_seconds]
    assert max(waits) == policy.longest_seconds
    assert waits == sorted(waits)
    assert waits[-3:] == [policy.longest_seconds] * 3


def test_when_ready_there_is_no_pause_and_the_look_is_counted() -> None:
    previous = next_progress(WHAT, None, False, START).as_dict()

    progress = next_progress(WHAT, previous, True, START + timedelta(seconds=20))

    assert (progress.ready, progress.attempt, progress.wait_seconds) == (True, 2, 0)


def test_the_start_of_the_wait_is_kept_across_looks() -> None:
    first = next_progress(WHAT, None, False, START).as_dict()

    later = next_progress(WHAT, first, False, START + timedelta(hours=1))

    assert later.since == iso(START)


def test_the_wait_ends_with_wait_timed_out_after_the_last_allowed_look() -> None:
    policy = POLICIES[WHAT]
    previous = {"attempt": policy.max_attempts - 1, "since": iso(START)}

    with pytest.raises(WaitTimedOut, match=f"still waiting for {WHAT} after {policy.max_attempts}"):
        next_progress(WHAT, previous, False, START + timedelta(seconds=1))


def test_the_wait_ends_with_wait_timed_out_once_its_time_is_up() -> None:
    policy = POLICIES[WHAT]
    previous = {"attempt": 1, "since": iso(START)}

    with pytest.raises(WaitTimedOut, match=f"{policy.max_seconds} s"):
        next_progress(WHAT, previous, False, START + timedelta(seconds=policy.max_seconds))


def test_a_look_just_before_the_time_is_up_still_waits() -> None:
    policy = POLICIES[WHAT]
    previous = {"attempt": 1, "since": iso(START)}

    progress = next_progress(
        WHAT, previous, False, START + timedelta(seconds=policy.max_seconds - 1)
    )

    assert progress.ready is False


def test_ready_on_the_last_allowed_look_is_still_ready() -> None:
    policy = POLICIES[WHAT]
    previous = {"attempt": policy.max_attempts - 1, "since": iso(START)}

    late = START + timedelta(seconds=policy.max_seconds + 60)

    assert next_progress(WHAT, previous, True, late).ready is True


def test_every_policy_is_bounded_in_looks_and_in_time() -> None:
    for what, policy in POLICIES.items():
        assert 0 < policy.first_seconds <= policy.longest_seconds, what
        assert policy.max_attempts > 1, what
        assert policy.max_seconds > 0, what
