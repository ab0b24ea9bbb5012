"""Executions run side by side on one virtual clock, as AWS runs them, and the same scenario
always runs the same way."""

import itertools
import json
import random
import time
from datetime import datetime
from typing import Any

import pytest

from simulator import Report, run_scenario
from simulator.clock import Stuck
from tests.simulator.conftest import MINI_TEMPLATE, MiniScenario
from tests.simulator.runs import SCENARIOS, Command, Run, failures, finished_run

SNAPSHOT_DONE = {
    "source": "aws.ec2",
    "detail-type": "EBS Snapshot Notification",
    "detail": {"event": "createSnapshot", "result": "succeeded"},
}


def _start(name: str, execution_input: dict[str, Any]) -> dict[str, Any]:
    """An on-demand start that does not wait for the execution to end."""
    return {"start": {"input": execution_input, "name": name}, "wait_for_events": False}


def _execution(report: Report, name: str) -> Any:
    return next(e for e in report.executions if e.name == name)


@pytest.fixture(scope="module")
def side_by_side() -> Report:
    """Three executions at once (two wait an hour, one fails at once), then one alone."""
    return run_scenario(
        {
            "name": "side-by-side",
            "template": str(MINI_TEMPLATE),
            "instances": {"helper": {"helper": True}},
            "steps": [
                _start("one", {}),
                _start("two", {}),
                _start("fails-at-once", {"marshal": True}),
                {"wait": "executions"},
                _start("alone", {}),
            ],
        }
    )


def test_two_executions_started_together_end_when_each_would_alone(
    side_by_side: Report,
) -> None:
    one, two = _execution(side_by_side, "one"), _execution(side_by_side, "two")
    alone = _execution(side_by_side, "alone")

    assert alone.virtual_seconds > 3600  # the machine waits an hour
    assert one.started_at == two.started_at
    assert one.virtual_seconds == two.virtual_seconds == alone.virtual_seconds
    # Side by side, not in turn: the second hour starts when the first two have ended.
    assert alone.started_at == "2026-11-25T01:02:01.000Z"
    assert side_by_side.virtual_seconds == 2 * alone.virtual_seconds


def test_a_wait_in_one_execution_does_not_hold_up_the_other(side_by_side: Report) -> None:
    slow, quick = _execution(side_by_side, "one"), _execution(side_by_side, "fails-at-once")
    assert slow.started_at == quick.started_at
    assert (quick.status, quick.virtual_seconds) == ("FAILED", 0.2)  # one Lambda call
    assert slow.status == "SUCCEEDED"
    assert slow.virtual_seconds > 3600


def test_a_duplicate_storm_starts_every_execution_at_the_same_instant(
    mini_scenario: MiniScenario,
) -> None:
    report = run_scenario(mini_scenario([{"deliver": {"raw": SNAPSHOT_DONE}, "times": 20}]))

    assert len(report.executions) == 20
    assert {e.started_at for e in report.executions} == {"2026-11-25T00:00:00.000Z"}
    assert len({e.virtual_seconds for e in report.executions}) == 1
    assert report.virtual_seconds == report.executions[0].virtual_seconds


def test_the_same_scenario_gives_the_same_report(nightly: Run) -> None:
    # Two snapshot events at the same instant: two executions interleave, Map iterations,
    # retries with jitter, the helper's turns.
    again = run_scenario(SCENARIOS / "nightly-backup.json")
    assert again.to_json() == nightly.report.to_json()


def test_botocore_retry_backoff_waits_the_same_whatever_the_process_drew_before() -> None:
    # botocore retries a throttled call after a jittered backoff drawn from `random`; the
    # fleet bench runs its parts in fresh processes, each with its own `random`.
    scenario = json.loads((SCENARIOS / "on-demand.json").read_text())
    scenario["faults"] = [
        {"action": "ec2:CreateVolume", "error": "RequestLimitExceeded", "times": 2},
        {"action": "ec2:DetachVolume", "error": "RequestLimitExceeded", "times": 3},
    ]
    reports = []
    for seed in (1, 2):
        random.seed(seed)
        reports.append(run_scenario(scenario).to_json())
    first, second = reports
    assert first["faults_hit"] == ["api ec2:createvolume"] * 2 + ["api ec2:detachvolume"] * 3
    assert first == second


# Long enough that the run's own set-up on a loaded machine (a few seconds) stays under it.
STALL_SECONDS = 20


def test_a_handler_blocking_outside_the_virtual_clock_fails_the_run_loudly(
    mini_scenario: MiniScenario,
) -> None:
    started = time.monotonic()
    with pytest.raises(
        Stuck, match=r"task#\d+ has run for .* without waiting on the virtual clock"
    ):
        run_scenario(
            mini_scenario(
                [{"start": {"input": {"stall_real_seconds": STALL_SECONDS}}}],
                limits={"execution_real_seconds": 0.5},
            )
        )
    assert time.monotonic() - started < STALL_SECONDS  # the run did not wait for the handler


def _ran(command: Command) -> tuple[datetime, datetime]:
    """From when to when the command ran, as the Run Command history shows it."""
    assert command.started_at is not None
    assert command.ended_at is not None
    return command.started_at, command.ended_at


def _acted(command: Command) -> datetime:
    """When the command's script took the helper's mutex and began its action."""
    assert command.acted_at is not None
    return command.acted_at


@pytest.fixture(scope="module")
def shared_helper() -> Run:
    """Two restores at once on one helper with HelperConcurrency 2."""
    return finished_run(SCENARIOS / "shared-helper.json")


def test_two_restores_sharing_a_helper_run_their_commands_side_by_side_and_act_in_turn(
    shared_helper: Run,
) -> None:
    """Issue #14, finding 3: the SSM agent runs both commands at once, and the disk tool's
    global mutex makes their actions take turns: no two actions on one helper overlap."""
    report = shared_helper.report
    assert report.ok, failures(report)
    assert report.peak_attached == {"helper": 2}
    for action in ("Inspect", "Revert", "Check"):
        first, second = (c for c in shared_helper.commands if c.action == action)
        assert {first.snapshot, second.snapshot} == {"night1.D", "night1.E"}
        assert first.instance == second.instance == "helper"
        (first_start, first_end), (second_start, second_end) = _ran(first), _ran(second)
        assert max(first_start, second_start) < min(first_end, second_end)
    reverts = [c for c in shared_helper.commands if c.action == "Revert"]
    assert len({c.parameters["DiskNumber"] for c in reverts}) == 2  # each on its own disk
    assert shared_helper.peak_commands == {"web1": 0, "helper": 2}
    acting = sorted((_acted(c), _ran(c)[1]) for c in shared_helper.commands)
    for (_, end), (start, _) in itertools.pairwise(acting):
        assert end <= start  # one action at a time
    waited = [c for c in shared_helper.commands if c.acted_at != c.started_at]
    assert waited, "some command waited for the mutex"


def test_restores_sharing_a_helper_take_turns_on_it(shared_helper: Run) -> None:
    # Started together; each action waits for the other's: they end apart, by one action.
    restores = [e for e in shared_helper.report.executions if e.virtual_seconds > 60]
    assert len(restores) == 2
    assert restores[0].started_at == restores[1].started_at
    assert restores[0].virtual_seconds != restores[1].virtual_seconds


def test_a_restore_that_waited_past_max_wait_hours_ages_out_and_one_alert_names_it() -> None:
    run = finished_run(SCENARIOS / "long-line.json")
    report = run.report
    # The scenario's own expectations, and nothing left in the helper's line (locks_held
    # counts waiters left in line as well as turns held).
    assert report.ok, failures(report)
    assert report.locks_held == {}
    verdicts = {alias: report.snapshot(alias).verdict for alias in ("night1.D", "night1.E")}
    assert verdicts == {"night1.D": "verified", "night1.E": "verified"}
    aged = report.snapshot("night1.F")
    assert aged.verdict == "failed"
    assert "WaitedTooLong" in aged.reason
    assert run.actions("night1.F") == []  # it never reached the helper
    # No alert of its own at the time: the reconciliation's one alert names it.
    (alert,) = report.alerts
    assert "waited too long" in alert["subject"]
    assert run.snapshot_ids["night1.F"] in alert["message"]
    assert run.snapshot_ids["night1.E"] not in alert["message"]
