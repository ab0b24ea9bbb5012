"""Bounded waits: growing, capped pauses and a firm end (logic/polling.py)."""

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tools.cfn_template import load_template
from vss_restore.clock import iso
from vss_restore.errors import WaitTimedOut
from vss_restore.logic.polling import (
    IN_INVOCATION,
    JITTER,
    LAST_CALL_SECONDS,
    POLICIES,
    VOLUME_FIRST_LOOK,
    next_progress,
    pause_after,
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


def _pauses(what: str, seconds_left: float, key: str = "") -> list[float]:
    """The pauses an invocation with `seconds_left` makes before each look, none ready."""
    pauses: list[float] = []
    waited = 0.0
    while (
        pause := pause_in_invocation(what, len(pauses), waited, seconds_left - waited, key)
    ) is not None:
        pauses.append(pause)
        waited += pause
    return pauses


def _moment_of_look(what: str, look: int, key: str) -> float:
    """Seconds from the operation's call to the `look`-th look at the volume."""
    return VOLUME_FIRST_LOOK[what] + sum(pause_after(what, n, key) for n in range(1, look))


VOLUMES = [f"vol-{n:017x}" for n in range(100)]


def test_the_waits_inside_an_invocation_are_the_ones_the_state_machine_starts_that_way() -> None:
    assert set(IN_INVOCATION) == set(STARTED_BY) == set(VOLUME_FIRST_LOOK)


def _progress_choice(states: dict[str, Any], task: str) -> str:
    """The Choice after a task that starts an operation, past its paced slot's Choice (a slot
    handed back is waited for, then the task runs again: logic/pacing.py)."""
    after = states[task]["Next"]
    first = states[after].get("Choices", [{}])[0]
    if str(first.get("Variable", "")).endswith(".slot"):
        assert states[first["Next"]]["Next"] == task  # the slot's Wait, then the task again
        return str(states[after]["Default"])
    return str(after)


@pytest.mark.parametrize("what", sorted(IN_INVOCATION))
def test_the_task_that_starts_the_operation_goes_straight_to_its_choice(what: str) -> None:
    states = _restore_states()
    start = states[STARTED_BY[what]]
    choice = states[_progress_choice(states, STARTED_BY[what])]
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
def test_the_loops_wait_state_pauses_as_long_as_the_look_says(what: str) -> None:
    states = _restore_states()
    wait = states[states[_progress_choice(states, STARTED_BY[what])]["Default"]]
    look = states[wait["Next"]]

    assert wait["Type"] == "Wait"
    assert wait["SecondsPath"] == look["ResultPath"] + ".wait_seconds"


@pytest.mark.parametrize("what", sorted(IN_INVOCATION))
def test_a_wait_inside_an_invocation_ends_before_its_function_and_its_task_time_out(
    what: str,
) -> None:
    state = _restore_states()[STARTED_BY[what]]
    timeout = _function_timeout(state)
    wait = IN_INVOCATION[what]

    waited = sum(_pauses(what, timeout, VOLUMES[0]))

    assert waited <= wait.at_most_seconds
    assert waited + LAST_CALL_SECONDS <= timeout < state["TimeoutSeconds"]


@pytest.mark.parametrize(
    ("what", "seconds"),
    [("volume_available", 2), ("volume_attached", 3), ("volume_detached", 3)],
)
def test_the_first_look_comes_when_the_operation_usually_has_ended(
    what: str, seconds: float
) -> None:
    assert _pauses(what, 900, VOLUMES[0])[0] == seconds


@pytest.mark.parametrize(
    ("what", "pauses"),
    [
        # A volume still creating may take minutes: its looks thin out to one in 30 s.
        ("volume_available", [1, 2, 4, 8, 16, 30, 30]),
        ("volume_attached", [1, 2, 4, 8, 15, 15, 15]),
        ("volume_detached", [1, 2, 4, 8, 15, 15, 15]),
    ],
)
def test_after_the_first_look_the_pause_doubles_from_one_second_up_to_its_longest(
    what: str, pauses: list[int]
) -> None:
    assert [pause_after(what, look) for look in range(1, 8)] == pauses


def test_inside_the_invocation_a_slow_volume_is_looked_at_five_times_in_its_share() -> None:
    wait = IN_INVOCATION["volume_available"]

    pauses = _pauses("volume_available", 900, VOLUMES[0])

    # 2, then about 1, 2, 4 and 8 s: the looks at about 2, 3, 5, 9 and 17 s.
    assert len(pauses) == 5
    assert sum(pauses) <= wait.at_most_seconds


@pytest.mark.parametrize("volume_id", VOLUMES[:20])
def test_the_jitter_shortens_a_pause_by_at_most_a_quarter_and_never_lengthens_it(
    volume_id: str,
) -> None:
    for look in range(1, 10):
        plain = pause_after("volume_attached", look)
        jittered = pause_after("volume_attached", look, volume_id)

        assert plain * (1 - JITTER) <= jittered <= plain


def test_the_same_volume_gets_the_same_pauses_on_every_run() -> None:
    first = [pause_after("volume_detached", look, VOLUMES[3]) for look in range(1, 8)]

    assert first == [pause_after("volume_detached", look, VOLUMES[3]) for look in range(1, 8)]


def test_waits_that_began_together_look_at_different_moments() -> None:
    # 100 attaches made at the same moment, none attached: unjittered, their 5th looks would
    # all come at 18 s; jittered, they spread over seconds (the early, short pauses barely).
    moments = sorted(_moment_of_look("volume_attached", 5, volume_id) for volume_id in VOLUMES)
    in_one_second = max(sum(1 for m in moments if start <= m < start + 1) for start in moments)

    assert {_moment_of_look("volume_attached", 5, "") for _ in VOLUMES} == {18.0}
    assert moments[-1] - moments[0] > 2
    assert in_one_second <= 60


@pytest.mark.parametrize("what", sorted(IN_INVOCATION))
def test_the_loop_waits_whole_seconds_between_one_and_its_longest(what: str) -> None:
    previous: dict[str, Any] | None = None
    waits = []
    for look in range(30):
        progress = next_progress(
            what, previous, False, START + timedelta(seconds=8 * look), key=VOLUMES[5]
        )
        waits.append(progress.wait_seconds)
        previous = progress.as_dict()

    longest = POLICIES[what].longest_seconds
    assert all(isinstance(w, int) and 1 <= w <= longest for w in waits)
    assert waits[0] == 1
    assert max(waits) == longest


@pytest.mark.parametrize("what", sorted(IN_INVOCATION))
def test_a_volume_wait_is_bound_by_its_time_before_its_looks(what: str) -> None:
    policy = POLICIES[what]
    shortest_pause = policy.longest_seconds * (1 - JITTER)

    assert policy.max_attempts * shortest_pause > policy.max_seconds


def test_an_invocation_short_of_time_hands_the_wait_over_while_it_can_still_answer() -> None:
    pauses = _pauses("volume_attached", LAST_CALL_SECONDS + 5)

    assert sum(pauses) <= 5
    assert pause_in_invocation("volume_attached", 0, 0, LAST_CALL_SECONDS + 2) is None


def test_ready_inside_the_invocation_counts_its_looks() -> None:
    progress = progress_after_waiting(
        "volume_available", True, 1, START, START + timedelta(seconds=2)
    )

    assert progress.as_dict() == {
        "ready": True,
        "attempt": 1,
        "since": iso(START),
        "wait_seconds": 0,
    }


def test_the_loop_takes_over_a_wait_where_the_invocation_left_its_schedule() -> None:
    what, volume_id = "volume_detached", VOLUMES[7]
    handed_over = progress_after_waiting(
        what, False, 5, START, START + timedelta(seconds=20), key=volume_id
    )

    later = next_progress(
        what, handed_over.as_dict(), False, START + timedelta(seconds=28), key=volume_id
    )

    assert handed_over.attempt == 5
    assert handed_over.wait_seconds == math.ceil(pause_after(what, 5, volume_id))
    assert (later.attempt, later.since) == (6, iso(START))
    assert later.wait_seconds == math.ceil(pause_after(what, 6, volume_id))
