"""The real ASL and handlers run in process: errors by class name, template env, virtual time."""

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from simulator import run_scenario

MiniScenario = Callable[..., dict[str, Any]]


def _hours_between(first: str, second: str) -> timedelta:
    return datetime.fromisoformat(second) - datetime.fromisoformat(first)


def test_a_long_workflow_runs_in_virtual_time_with_the_handlers_errors_by_name(
    mini_scenario: MiniScenario,
) -> None:
    started = time.monotonic()
    report = run_scenario(
        mini_scenario([{"start": {"input": {"hello": "world"}}}], parameters={"Loud": "yes"})
    )
    real_seconds = time.monotonic() - started

    (execution,) = report.executions
    assert execution.status == "SUCCEEDED"
    # The handler's exception class is the error name Retry and Catch match on.
    assert execution.output["caught"]["Error"] == "NotReadyYet"
    assert "the volume is not there yet" in execution.output["caught"]["Cause"]
    first, second = execution.output["first"]["echo"], execution.output["second"]["echo"]
    # An hour's Wait and two 60 s Retry intervals passed on the virtual clock only.
    assert _hours_between(first["now"], second["now"]) >= timedelta(seconds=3600 + 120)
    assert real_seconds < 15
    assert execution.state_transitions == 5
    assert first["input"] == {"hello": "world"}


def test_handlers_see_the_template_environment_and_a_lambda_context(
    mini_scenario: MiniScenario,
) -> None:
    report = run_scenario(
        mini_scenario([{"start": {"input": {}}}], parameters={"Greeting": "hi", "Loud": "yes"})
    )
    echo = report.executions[0].output["first"]["echo"]
    assert echo["greeting"] == "hi!"  # !If and !Join over a parameter override
    assert echo["own"] == "vss-restore-hi"  # the function's own !Sub variable
    assert echo["tool_document"] == "vss-restore-ToolDocument"  # !Ref of the document
    assert echo["region"] == "us-east-1"
    assert echo["function_name"] == "EchoFunction"
    assert echo["memory"] == 256
    assert 0 < echo["remaining_ms"] <= 10_000


def test_a_result_lambda_cannot_serialize_fails_as_lambda_would(
    mini_scenario: MiniScenario,
) -> None:
    report = run_scenario(mini_scenario([{"start": {"input": {"marshal": True}}}]))
    (execution,) = report.executions
    assert execution.status == "FAILED"
    assert execution.error == "Runtime.MarshalError"


def test_a_handler_that_sleeps_lets_virtual_time_pass_within_its_timeout(
    mini_scenario: MiniScenario,
) -> None:
    started = time.monotonic()
    report = run_scenario(mini_scenario([{"start": {"input": {"sleep_seconds": 8}}}]))

    (execution,) = report.executions
    assert execution.status == "SUCCEEDED"
    # The template's Timeout is 10 s: 8 of them went by, on the virtual clock only.
    assert 0 < execution.output["first"]["echo"]["remaining_ms"] <= 2_000
    assert time.monotonic() - started < 15


def test_a_handler_that_runs_past_its_timeout_fails_as_lambda_would(
    mini_scenario: MiniScenario,
) -> None:
    report = run_scenario(mini_scenario([{"start": {"input": {"sleep_seconds": 11}}}]))

    (execution,) = report.executions
    assert execution.status == "FAILED"
    assert execution.error == "Sandbox.Timedout"


def test_an_event_starts_an_execution_only_when_the_template_pattern_matches(
    mini_scenario: MiniScenario,
) -> None:
    event = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "EBS Snapshot Notification",
        "source": "aws.ec2",
        "account": "${account}",
        "time": "2026-11-25T00:03:00Z",
        "region": "${region}",
        "resources": ["arn:aws:ec2:${region}::snapshot/snap-01234567890abcdef"],
        "detail": {"event": "createSnapshot", "result": "succeeded"},
    }
    failed = {**event, "detail": {"event": "createSnapshot", "result": "failed"}}
    report = run_scenario(
        mini_scenario([{"deliver": {"raw": event}}, {"deliver": {"raw": failed}}])
    )
    (execution,) = report.executions
    assert execution.started_by == "event SnapshotDone"
    # EventBridge hands the whole event to the state machine.
    received = execution.output["first"]["echo"]["input"]
    assert received["detail-type"] == "EBS Snapshot Notification"
    assert received["account"] == "123456789012"
    assert report.events == {"delivered": 3, "matched": 1, "unmatched": 2}


def test_multi_volume_events_match_on_any_element_of_their_snapshot_list(
    mini_scenario: MiniScenario,
) -> None:
    def multi(statuses: list[str]) -> dict[str, object]:
        return {
            "source": "aws.ec2",
            "detail-type": "EBS Multi-Volume Snapshots Completion Status",
            "detail": {"snapshots": [{"snapshot_id": "x", "status": s} for s in statuses]},
        }

    report = run_scenario(
        mini_scenario(
            [
                {"deliver": {"raw": multi(["completed", "completed"])}},
                {"deliver": {"raw": multi(["completed", "error"])}},
            ]
        )
    )
    assert [e.started_by for e in report.executions] == ["event SomeSnapshotFailed"]
