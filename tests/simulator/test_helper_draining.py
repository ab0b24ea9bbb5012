"""A fleet helper past HelperMaxHours with restores in its line (#13): it drains instead of
failing work. The turn it holds finishes there, the restores in its line go back to "Prepare
the helper" (HelperDraining), it is terminated once drained, and a new helper takes the rest.

The bench's overload in small (bench/scale.py, `overload_evidence`): MaxHelpers 1,
HelperMaxHours 1 (the template's least), 20 snapshots at once, about 4,300 s of turns."""

import pytest

from bench import scenarios
from bench.runs import Run, run
from tests.simulator.runs import failures

MAX_HOURS = 1


@pytest.fixture(scope="module")
def night() -> Run:
    scenario = scenarios.fleet_mode(
        instances=7, max_helpers=1, throttle_every=None, burst_seconds=1.0, name="fleet-draining"
    )
    scenario["parameters"]["HelperMaxHours"] = str(MAX_HOURS)
    return run(scenario)


def _sources(night: Run) -> list[str]:
    return [s.verdict for s in night.report.snapshots if s.origin != "workflow"]


def test_every_restore_in_the_old_helpers_line_is_verified(night: Run) -> None:
    assert night.report.ok, failures(night.report)
    verdicts = _sources(night)
    assert len(verdicts) == len(night.scenario["snapshots"]) == 20  # 216 s each: past 1 h
    assert set(verdicts) == {"verified"}
    assert {e.status for e in night.executions} == {"SUCCEEDED"}


def test_the_old_helper_finishes_its_turn_past_max_hours_then_is_terminated_once_drained(
    night: Run,
) -> None:
    old = night.launched_helpers[0]
    on_old = [a for a in night.attachments if a.instance == old.instance_id]
    assert old.terminated_at is not None
    assert old.terminated_at > old.launched_at + MAX_HOURS * 3600
    # Not cut short: every volume it held was detached before it went, and the turn that ran
    # when it reached HelperMaxHours ended after that, on it.
    assert all(a.detached_at is not None and a.detached_at <= old.terminated_at for a in on_old)
    last_detached = max(a.detached_at or 0.0 for a in on_old)
    assert last_detached > old.launched_at + MAX_HOURS * 3600
    # Terminated by the retirement that found it drained (every 300 s), not later.
    assert old.terminated_at - last_detached <= 300 + 60


def test_while_the_only_place_holds_a_draining_helper_new_work_waits_and_is_not_lost(
    night: Run,
) -> None:
    delayed = [
        message
        for function, error, message in night.errors
        if function == "PrepareHelperFunction" and error == "HelperLaunchDelayed"
    ]
    assert any("still booting or draining (past HelperMaxHours)" in m for m in delayed)


def test_the_waiters_go_to_a_new_helper_launched_for_the_rest(night: Run) -> None:
    old, *newer = night.launched_helpers
    assert newer, "no helper launched after the old one drained"
    assert old.terminated_at is not None
    assert all(h.launched_at >= old.terminated_at for h in newer)  # MaxHelpers 1: its place
    served = {a.instance for a in night.attachments}
    assert served == {h.instance_id for h in night.launched_helpers}
    # Sent elsewhere by HelperDraining ("Take a turn" back to "Prepare the helper"), never
    # counted as a lost helper (the once-only HelperLost rule is left whole).
    moved = [
        e
        for e in night.restores()
        if (taken := e.first("Take a turn on the helper")) is not None
        and (prepared := e.last("Prepare the helper")) is not None
        and prepared > taken
    ]
    assert moved
    assert not [e for e in night.executions if e.first("Lost a helper before?") is not None]


def test_nothing_of_ours_is_left_running(night: Run) -> None:
    assert all(h.terminated_at is not None for h in night.launched_helpers)
    assert not [h for h in night.report.helpers if h["running"]]
    assert night.report.volumes_left == []
