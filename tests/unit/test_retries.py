"""The state machine's AwsThrottled Retry, step by step: what each step may afford to wait.

Step Functions runs a retrier as the Developer Guide's "Handling errors in Step Functions
workflows" says: retry n (from 0) waits IntervalSeconds * BackoffRate^n, capped at
MaxDelaySeconds, a random time between 0 and that with JitterStrategy FULL; MaxAttempts
retries, then the Catch. A task's TimeoutSeconds bounds each attempt (the "Take a turn on
the helper" task relies on it: it times out every 900 s and is retried).
"""

import json
from pathlib import Path
from typing import Any

from vss_restore.turns import TURN_LEASE_SECONDS

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "restore.asl.json"
THROTTLED = "AwsThrottled"
# The steps that hold nothing costly while they wait, and so may retry longer: the disk
# tool's commands (only the helper's turn waits) and the consistent snapshot, taken after
# the turn is given back (only the temporary volume waits).
COMMANDS = ("Inspect the disk", "Revert the shadow copies", "Check the disk")
SNAPSHOT = "Snapshot the consistent volume"
# botocore's legacy mode before a handler sees AwsThrottled: 5 attempts, the n-th retry
# after at most 2**n s (2 + 4 + 8 + 16), inside each task attempt.
SDK_LONGEST_SECONDS = 30
# History events a retried Lambda task adds (scheduled, started, failed, and margin), and
# an execution's limit (Step Functions quotas: 25,000 events).
EVENTS_PER_RETRY = 5
HISTORY_LIMIT = 25_000


def _states() -> dict[str, dict[str, Any]]:
    asl = json.loads(ASL.read_text(encoding="utf-8"))
    restore = asl["States"]["Restore each snapshot"]["ItemProcessor"]["States"]
    return {name: s for name, s in {**asl["States"], **restore}.items() if s["Type"] == "Task"}


def _rule(state: dict[str, Any], error: str = THROTTLED) -> dict[str, Any]:
    (rule,) = [r for r in state["Retry"] if error in r["ErrorEquals"]]
    return rule


def _waits(rule: dict[str, Any]) -> list[float]:
    """Each retry's longest wait."""
    return [
        min(rule["IntervalSeconds"] * rule["BackoffRate"] ** n, rule["MaxDelaySeconds"])
        for n in range(rule["MaxAttempts"])
    ]


def test_every_task_retries_throttling_with_capped_full_jitter() -> None:
    for name, state in _states().items():
        rule = _rule(state)
        assert rule["JitterStrategy"] == "FULL", name
        assert rule["MaxDelaySeconds"] <= 300, name  # a few minutes at most between tries


def test_the_steps_that_hold_nothing_costly_ride_out_longer_throttling() -> None:
    states = _states()
    default = _rule(states["Create the volume"])
    for name in (*COMMANDS, SNAPSHOT):
        rule = _rule(states[name])
        assert rule["ErrorEquals"] == [THROTTLED], name  # DeviceNameTaken keeps its own rule
        assert sum(_waits(rule)) > 5 * sum(_waits(default)), name
        # Its waits together stay within the task's own timeout.
        assert sum(_waits(rule)) <= states[name]["TimeoutSeconds"], name
    # The other steps keep the short rule: they hold a claim or a volume mid-operation.
    for name, state in states.items():
        if name not in (*COMMANDS, SNAPSHOT):
            assert _rule(state) == default | {"ErrorEquals": _rule(state)["ErrorEquals"]}, name


def test_a_turn_whose_commands_retry_and_run_their_longest_keeps_its_lease() -> None:
    # Each command's throttled SendCommand retried to the end (the SDK's backoff inside each
    # attempt), then the command running to its task's timeout: the turn still ends before
    # its lease lapses and another restore could take it.
    states = _states()
    longest = 0.0
    for name in COMMANDS:
        rule = _rule(states[name])
        sdk = (rule["MaxAttempts"] + 1) * SDK_LONGEST_SECONDS
        longest += sum(_waits(rule)) + sdk + states[name]["TimeoutSeconds"]

    # Room left for the rest of the turn (create, attach, detach and their waits).
    assert longest + 15 * 60 <= TURN_LEASE_SECONDS


def test_a_restore_retrying_every_rule_to_the_end_stays_well_within_its_history() -> None:
    retries = sum(r["MaxAttempts"] for state in _states().values() for r in state["Retry"])

    # Half the limit left for the states themselves and the poll loops.
    assert retries * EVENTS_PER_RETRY <= HISTORY_LIMIT / 2
