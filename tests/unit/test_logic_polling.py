"""Bounded waits: growing, capped pauses and a firm end (logic/polling.py)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tools.cfn_template import load_template
from vss_restore.clock import iso
from vss_restore.errors import WaitTimedOut
from vss_restore.logic.polling import (
    IN_INVOCATION,
    LAST_CALL_SECONDS,
    POLICIES,
    next_progress,
    pause_in_invocation,
    progress_after_waiting,
)

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "restore.asl.json"
START = datetime(2026, 11, 25, 0, 5, tzinfo=UTC)
WHAT = "revert"


def _waits_in_the_state_machine() -> set[str]:
    """The waits the workflow's poll tasks run: named under $.progress, or by the `wait`
    they hand the volume's look."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            path = node.get("ResultPath")
            if isinstance(path, str) and path.startswith("$.progress."):
                found.add(path.removeprefix("$.progress."))
            if isinstance(node.get("wait"), str):
                found.add(node["wait"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(ASL.read_text(encoding="utf-8")))
    return found


def test_the_state_machine_has_poll_loops() -> None:
    assert _waits_in_the_state_machine() >= {"volume_available", "volume_detached"}


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


# --- the few seconds waited inside the invocation that starts the operation -------------

TEMPLATE = ASL.parents[1] / "template.yaml"
# Each wait done inside the Lambda that starts its operation, and that Lambda's state.
STARTED_BY = {
    "volume_available": "Create the volume",
    "volume_attached": "Attach the volume",
    "volume_detached": "Detach the volume",
}


def _restore_states() -> dict[str, Any]:
    definition = json.loads(ASL.read_text(encoding="utf-8"))
    states: dict[str, Any] = definition["States"]["Restore each snapshot"]["ItemProcessor"][
        "States"
    ]
    return states


def _function_timeout(state: dict[str, Any]) -> int:
    """The Timeout of the function a Task state invokes, from template.yaml."""
    template = load_template(TEMPLATE)
    logical_id = state["Parameters"]["FunctionName"].strip("${}").removesuffix("Arn")
    properties = template["Resources"][logical_id]["Properties"]
    return int(properties.get("Timeout", template["Globals"]["Function"]["Timeout"]))


def _pauses(what: str, seconds_left: float) -> list[float]:
    pauses: list[float] = []
    waited = 0.0
    while (pause := pause_in_invocation(what, waited, seconds_left - waited)) is not None:
        pauses.append(pause)
        waited += pause
    return pauses


def test_the_waits_inside_an_invocation_are_the_ones_the_state_machine_starts_that_way() -> None:
    assert set(IN_INVOCATION) == set(STARTED_BY)


@pytest.mark.parametrize("what", sorted(IN_INVOCATION))
def test_the_task_that_starts_the_operation_goes_straight_to_its_choice(what: str) -> None:
    states = _restore_states()
    start = states[STARTED_BY[what]]
    choice = states[start["Next"]]
    # The loop is the fallback: its look and the start write the progress to one place.
    look = states[states[choice["Default"]]["Next"]]
    progress = look["ResultPath"]
    under, key = progress.rsplit(".", 1)

    assert choice["Type"] == "Choice"
    assert choice["Choices"][0]["Variable"] == progress + ".ready"
    assert start["ResultPath"] == progress or (
        start["ResultPath"] == under and start["ResultSelector"][f"{key}.$"] == f"$.Payload.{key}"
    )
    assert look["Parameters"]["Payload"] == {
        "wait": what,
        "volume_id.$": "$.volume.volume_id",
        "instance_id.$": "$.helper.instance_id",
        "progress.$": progress,
    }


@pytest.mark.parametrize("what", sorted(IN_INVOCATION))
def test_a_wait_inside_an_invocation_ends_before_its_function_and_its_task_time_out(
    what: str,
) -> None:
    state = _restore_states()[STARTED_BY[what]]
    timeout = _function_timeout(state)
    wait = IN_INVOCATION[what]

    waited = sum(_pauses(what, timeout))

    assert waited <= wait.at_most_seconds
    assert waited + LAST_CALL_SECONDS <= timeout < state["TimeoutSeconds"]


def test_inside_the_invocation_the_volume_is_looked_at_every_second_for_its_share() -> None:
    wait = IN_INVOCATION["volume_available"]

    pauses = _pauses("volume_available", 900)

    assert set(pauses) == {wait.every_seconds}
    assert wait.at_most_seconds - wait.every_seconds < sum(pauses) <= wait.at_most_seconds


def test_an_invocation_short_of_time_hands_the_wait_over_while_it_can_still_answer() -> None:
    pauses = _pauses("volume_attached", LAST_CALL_SECONDS + 3)

    assert sum(pauses) <= 3
    assert pause_in_invocation("volume_attached", 0, LAST_CALL_SECONDS) is None


def test_ready_inside_the_invocation_counts_as_the_loops_first_look() -> None:
    progress = progress_after_waiting("volume_available", True, START, START + timedelta(seconds=3))

    assert progress.as_dict() == {
        "ready": True,
        "attempt": 1,
        "since": iso(START),
        "wait_seconds": 0,
    }


def test_the_loop_takes_over_a_wait_from_where_the_invocation_started_it() -> None:
    what = "volume_detached"
    handed_over = progress_after_waiting(what, False, START, START + timedelta(seconds=20))

    later = next_progress(what, handed_over.as_dict(), False, START + timedelta(seconds=22))

    assert (handed_over.attempt, handed_over.wait_seconds) == (1, POLICIES[what].first_seconds)
    assert (later.attempt, later.since) == (2, iso(START))
