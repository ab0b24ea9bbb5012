"""EventBridge rules that invoke functions, schedules, aborted executions, and what an operator
sees of them: alerts, Lambda errors, the ledger."""

import json
from pathlib import Path
from typing import Any

import pytest

from simulator import Report, run_scenario
from simulator.template import TemplateError
from tests.simulator.conftest import MINI_TEMPLATE, MiniScenario

ACCOUNT, REGION = "123456789012", "us-east-1"
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:Machine-sim"


def _start(name: str, execution_input: dict[str, Any]) -> dict[str, Any]:
    return {"start": {"input": execution_input, "name": name}, "wait_for_events": False}


def _execution(report: Report, name: str) -> Any:
    return next(e for e in report.executions if e.name == name)


def test_a_failed_execution_reaches_the_function_its_status_change_rule_targets(
    mini_scenario: MiniScenario,
) -> None:
    report = run_scenario(mini_scenario([_start("broken", {"marshal": True}), _start("fine", {})]))

    assert {e.name: e.status for e in report.executions} == {
        "broken": "FAILED",
        "fine": "SUCCEEDED",
    }
    # Only the failure matches the rule's pattern; the function gets the event as AWS sends it.
    (alert,) = report.alerts
    assert alert["subject"] == "FAILED: broken"
    assert json.loads(alert["message"]) == {
        "executionArn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:Machine-sim:broken",
        "stateMachineArn": MACHINE,
        "name": "broken",
        "status": "FAILED",
    }
    assert report.lambda_errors == []


def test_a_function_that_fails_on_an_event_is_retried_twice_then_the_event_is_dropped(
    mini_scenario: MiniScenario,
) -> None:
    report = run_scenario(
        mini_scenario([_start("broken", {"marshal": True, "release_fails": True})])
    )

    attempts = [(e["attempt"], e["at"], e["retried"]) for e in report.lambda_errors]
    # Failed at 0.2 s; each attempt takes 0.2 s; Lambda retries after 1 and then 2 minutes.
    assert attempts == [
        (1, "2026-11-25T00:00:00.400Z", True),
        (2, "2026-11-25T00:01:00.600Z", True),
        (3, "2026-11-25T00:03:00.800Z", False),
    ]
    assert {(e["function"], e["trigger"], e["error"]) for e in report.lambda_errors} == {
        ("ReleaseFunction", "rule ExecutionDidNotSucceed", "ReleaseFailed")
    }
    assert report.alerts == []


def test_an_aborted_execution_stops_at_once_and_sends_its_status_change(
    mini_scenario: MiniScenario,
) -> None:
    report = run_scenario(
        mini_scenario(
            [_start("slow-restore", {}), {"abort": {"execution": "slow"}, "at": 600}],
            expect={"executions": {"ABORTED": 1}},
        )
    )

    assert report.ok, report.failures
    (aborted,) = report.executions
    assert aborted.virtual_seconds == 600  # its hour-long Wait ended with the abort
    assert [a["subject"] for a in report.alerts] == ["ABORTED: slow-restore"]


def test_an_execution_aborted_inside_a_map_ends_aborted_as_in_aws(
    mini_scenario: MiniScenario,
) -> None:
    naps = {"items": [{"seconds": 3600}, {"seconds": 7200}]}
    fleet = {"input": naps, "machine": "Fleet"}
    report = run_scenario(
        mini_scenario(
            [
                {"start": {**fleet, "name": "fleet-runs"}, "wait_for_events": False},
                {"start": {**fleet, "name": "fleet-stopped"}, "wait_for_events": False},
                {"abort": {"execution": "fleet-stopped"}, "at": 600},
            ]
        )
    )

    runs, stopped = (_execution(report, n) for n in ("fleet-runs", "fleet-stopped"))
    assert (runs.status, runs.virtual_seconds) == ("SUCCEEDED", 7200)  # iterations side by side
    assert (stopped.status, stopped.virtual_seconds) == ("ABORTED", 600)
    assert [a["subject"] for a in report.alerts] == ["ABORTED: fleet-stopped"]


def test_a_schedule_fires_when_time_passes_it_and_when_a_step_runs_it(
    mini_scenario: MiniScenario,
) -> None:
    report = run_scenario(
        mini_scenario([{"run_schedule": "ReconcileFunction"}, {"advance": 4 * 3600}])
    )

    fired = [json.loads(a["message"]) for a in report.alerts if a["subject"] == "reconciled"]
    # On demand at the start (the function runs 0.2 s later), then at 03:00 on its own.
    assert fired == [
        {"source": "aws.events", "at": "2026-11-25T00:00:00Z"},
        {"source": "aws.events", "at": "2026-11-25T03:00:00Z"},
    ]


def test_a_schedule_the_simulator_cannot_fire_is_refused_when_the_template_loads(
    mini_scenario: MiniScenario, tmp_path: Path
) -> None:
    weekly = tmp_path / "template.yaml"
    weekly.write_text(MINI_TEMPLATE.read_text().replace("cron(0 3 * * ? *)", "cron(0 3 ? * MON *)"))
    with pytest.raises(TemplateError, match=r"Nightly: .*cron\(0 3 \? \* MON \*\).*daily"):
        run_scenario(mini_scenario([], template=str(weekly)))


def test_turns_and_claims_left_in_the_ledger_are_reported(mini_scenario: MiniScenario) -> None:
    report = run_scenario(
        mini_scenario([{"run_schedule": "LeaveLockFunction"}], expect={"locks_free": True})
    )

    assert report.locks_held == {"helper": ["gone|snap-1"]}
    assert report.claims_running == [{"snapshot": "snap-1", "execution": "gone"}]
    assert not report.ok
    assert "helper: turns still held by gone|snap-1" in report.failures
    assert "snap-1: claim still running for gone" in report.failures
