"""The helper is never the production server by default (#13): a snapshot is not restored
on the instance it came from, nor on any backed-up server, unless the operator accepts the
risk for its own instance (AllowSourceAsHelper); of several helpers, the least busy."""

import json
from typing import Any

import pytest

from tests.simulator.runs import SCENARIOS, Run, failures, finished_run


def _scenario(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCENARIOS / f"{name}.json").read_text())
    return loaded


def _refused_before_anything_was_created(run: Run, reason: str) -> None:
    assert run.report.ok, failures(run.report)
    for alias, verdict in run.source_tags.items():
        assert verdict["vss-restore:status"] == "failed", alias
        assert verdict["vss-restore:reason"].startswith("HelperNotUsable: "), alias
        assert reason in verdict["vss-restore:reason"], alias
    assert run.restored_volumes == []
    assert run.commands == []
    assert run.report.locks_held == {}


def test_named_mode_without_helpers_restores_no_snapshot_on_its_own_server() -> None:
    run = finished_run(SCENARIOS / "no-helper-configured.json")

    _refused_before_anything_was_created(run, "no helper configured: set HelperInstanceIds")
    # The alert an operator reads says what to set, too.
    assert all("set HelperInstanceIds" in a["message"] for a in run.report.alerts)


def test_the_backed_up_instance_named_as_helper_is_refused_with_the_risk_and_the_way_out() -> None:
    run = finished_run(SCENARIOS / "source-as-helper-refused.json")

    _refused_before_anything_was_created(run, "is the backed-up instance itself")
    reason = run.source_tags["night1.D"]["vss-restore:reason"]
    assert "set AllowSourceAsHelper=true to accept the risk" in reason
    assert reason.endswith("a revert may hit the live volume)")  # whole, in the 256 of a tag


def test_a_helper_that_is_backed_up_itself_is_refused_for_anothers_snapshot() -> None:
    run = finished_run(SCENARIOS / "backed-up-helper-refused.json")

    _refused_before_anything_was_created(run, "is backed up itself")


def test_allowing_the_source_restores_on_the_named_backed_up_instance_as_before() -> None:
    scenario = _scenario("source-as-helper-refused")
    scenario["parameters"]["AllowSourceAsHelper"] = "true"
    scenario["expect"] = {
        "snapshots": {
            "night1.C": {"verdict": "verified", "identity_preserved": True},
            "night1.D": {"verdict": "verified", "identity_preserved": True},
        }
    }

    run = finished_run(scenario)

    assert run.report.ok, failures(run.report)
    assert {c.instance for c in run.commands} == {"web1"}


def test_an_operator_naming_the_source_instance_on_demand_is_refused_too() -> None:
    scenario = _scenario("on-demand")
    scenario["instances"]["web1"]["helper"] = True
    scenario["steps"] = [{"start": {"snapshot": "last-night.D", "helper": "web1"}}]
    scenario["expect"] = {"snapshots": {"last-night.D": {"verdict": "failed"}}}

    run = finished_run(scenario)

    _refused_before_anything_was_created(run, "is the backed-up instance itself")


@pytest.fixture(scope="module")
def several() -> Run:
    return finished_run(SCENARIOS / "several-helpers.json")


def test_of_several_helpers_a_backed_up_one_is_passed_over(several: Run) -> None:
    assert several.report.ok, failures(several.report)
    assert "sql1" not in {c.instance for c in several.commands}
    assert several.report.peak_attached["sql1"] == 0


def test_restores_arriving_one_after_another_go_to_the_least_busy_helper(several: Run) -> None:
    inspected_on = [c.instance for c in several.commands if c.action == "Inspect"]

    assert sorted(inspected_on) == ["helper1", "helper1", "helper2", "helper2"]
    # The second arrives while the first holds its helper's turn: it goes to the other one.
    assert inspected_on[0] != inspected_on[1]
