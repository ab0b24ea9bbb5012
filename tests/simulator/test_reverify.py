"""Re-verification over two simulated weeks (the shipped reverify-sample scenario): the real
StartReverificationsFunction fired by its weekly schedule, the real workflow in re-verify
mode, IAM from template.yaml judging every call, and a KMS key disabled in between."""

import re
from collections import defaultdict
from typing import Any

import pytest

from simulator import Simulation, load
from tests.simulator.runs import SCENARIOS, Run, failures, finished_run
from vss_restore import tags

WEEKS = {"20261108": 7, "20261115": 8}  # the run's day -> the newest night backed up by then
NAME = re.compile(r"^reverify-(snap-[0-9a-f]+)-(\d{8})$")


@pytest.fixture(scope="module")
def run() -> Run:
    return finished_run(SCENARIOS / "reverify-sample.json")


def _reverified(run: Run) -> dict[str, list[str]]:
    """Week (its day) -> the aliases of the snapshots re-verified that week."""
    alias_of = {snapshot_id: alias for alias, snapshot_id in run.snapshot_ids.items()}
    weeks: dict[str, list[str]] = defaultdict(list)
    for execution in run.report.executions:
        if found := NAME.match(execution.name):
            weeks[found.group(2)].append(alias_of[found.group(1)])
    return weeks


def _night(alias: str) -> int:
    return int(re.search(r"night(\d+)\.", alias).group(1))  # type: ignore[union-attr]


def test_each_week_restores_again_one_older_verified_backup_per_instance(run: Run) -> None:
    assert run.report.ok, failures(run.report)
    weeks = _reverified(run)
    assert sorted(weeks) == sorted(WEEKS)
    for week, aliases in weeks.items():
        web1 = [a for a in aliases if a.startswith("night")]
        web2 = [a for a in aliases if a.startswith("web2-")]
        assert len(web1) == 1, aliases
        assert len(web2) == 1, aliases
        for alias in aliases:
            # Within the window, never the newest (the night's restore has just verified it).
            assert 1 <= _night(alias) < WEEKS[week], (week, alias)


def test_a_reverification_keeps_the_verdict_and_no_second_consistent_snapshot(run: Run) -> None:
    for aliases in _reverified(run).values():
        for alias in aliases:
            snapshot_tags = run.source_tags[alias]
            assert snapshot_tags[tags.STATUS] == tags.VERIFIED
            assert not snapshot_tags[tags.EXECUTION].split(":")[-1].startswith("reverify-")
            assert snapshot_tags[tags.REVERIFIED_AT]
            assert "reverify-" in snapshot_tags[tags.REVERIFY_EXECUTION]
            consistent = [
                s.alias for s in run.report.snapshots if s.alias.startswith(f"{alias}.consistent")
            ]
            assert consistent == [f"{alias}.consistent"], consistent


def test_a_key_disabled_since_fails_the_reverification_with_an_alert_naming_it(run: Run) -> None:
    (web1_week2,) = [a for a in _reverified(run)["20261115"] if a.startswith("night")]
    (web2_week2,) = [a for a in _reverified(run)["20261115"] if a.startswith("web2-")]
    failed = run.source_tags[web1_week2]
    assert failed[tags.REVERIFY_RESULT] == tags.FAILED
    assert "Disabled" in failed[tags.REVERIFY_REASON]
    assert failed[tags.STATUS] == tags.VERIFIED  # the night's verdict stands
    assert run.source_tags[web2_week2][tags.REVERIFY_RESULT] == tags.VERIFIED
    for week_one in _reverified(run)["20261108"]:
        assert run.source_tags[week_one][tags.REVERIFY_RESULT] == tags.VERIFIED

    (alert,) = run.report.alerts
    snapshot_id = run.snapshot_ids[web1_week2]
    assert snapshot_id in alert["subject"]
    assert "re-verification" in alert["subject"]
    assert "KeyNotUsable" in alert["message"]
    assert "Disabled" in alert["message"]
    assert "keeps its verdict" in alert["message"]


@pytest.mark.parametrize(("reverify", "enabled"), [("true", True), ("false", False)])
def test_reverify_false_deploys_the_weekly_schedule_disabled(reverify: str, enabled: bool) -> None:
    scenario = {"name": "x", "instances": {"web1": {}}, "steps": [], "parameters": {}}
    scenario["parameters"] = {"Reverify": reverify}
    with Simulation(load(scenario)) as simulation, simulation.operate():
        (weekly,) = [
            s for s in simulation.stack.schedules if s.function == "StartReverificationsFunction"
        ]
        assert (weekly.schedule.expression, weekly.enabled) == ("rate(7 days)", enabled)


# -- OneCopy: the older nights have only their consistent snapshot left ----------------------
ONE_COPY_WEEKS = {"20261108": 6, "20261115": 13}  # run's day -> the newest night whose
# backup OneCopy had deleted by then (the retention at noon the day before)


@pytest.fixture(scope="module")
def one_copy() -> dict[str, Any]:
    """The reverify-one-copy scenario's report, and the tags of what it re-verified."""
    with Simulation(load(SCENARIOS / "reverify-one-copy.json")) as simulation:
        report = simulation.run()
        assert report.nights is not None
        alias_of = {i: a for a, i in report.nights["snapshot_ids"].items()}
        drawn = {
            found.group(2): (alias_of[found.group(1)], found.group(1), execution)
            for execution in report.executions
            if (found := NAME.match(execution.name))
        }
        listed = simulation.ec2_client().describe_snapshots(OwnerIds=["self"])["Snapshots"]
        tags_of = {s["SnapshotId"]: tags.as_dict(s.get("Tags")) for s in listed}
    return {"report": report, "drawn": drawn, "tags": tags_of}


def test_one_copy_nights_are_reverified_through_their_consistent_snapshot(
    one_copy: dict[str, Any],
) -> None:
    report = one_copy["report"]
    assert report.ok, failures(report)
    assert sorted(one_copy["drawn"]) == sorted(ONE_COPY_WEEKS)
    for week, (alias, _, _) in one_copy["drawn"].items():
        # An older night's consistent snapshot (its backup gone), never the newest night's.
        assert alias.endswith(".consistent"), alias
        assert _night(alias) <= ONE_COPY_WEEKS[week], (week, alias)
    # Re-verified check-only: inspected and checked, nothing reverted, no snapshot made.
    (_, _, week_one) = one_copy["drawn"]["20261108"]
    (verdict,) = week_one.output["verdicts"]
    assert (verdict["status"], verdict["rule"], verdict["reverify"]) == (
        tags.VERIFIED,
        "verify-only",
        True,
    )
    assert (verdict["consistent_snapshot"], verdict["shadow_copies_reverted"]) == ("", [])
    assert report.disk_tool_commands == {"Inspect": 2, "Check": 2}
    assert report.nights["made"] == 15 * 2 * 2  # the re-verifications made no snapshot


def test_a_consistent_snapshot_failing_its_reverification_says_so_and_keeps_its_status(
    one_copy: dict[str, Any],
) -> None:
    # Week two's check finds the volume needing a full repair (the scenario's fault).
    _, snapshot_id, execution = one_copy["drawn"]["20261115"]
    assert (execution.status, execution.error) == ("FAILED", "RestoreFailed")
    found = one_copy["tags"][snapshot_id]
    assert found[tags.REVERIFY_RESULT] == tags.FAILED
    assert "CheckFailed" in found[tags.REVERIFY_REASON]
    assert found[tags.REVERIFY_EXECUTION].endswith(":" + execution.name)
    # OneCopy's mark stays as the retention wrote it; the re-verification adds only its own,
    # through the verdict roles' TagReverifyOnOurConsistentSnapshots (no call refused).
    assert found[tags.STATUS] == tags.VERIFIED
    assert found[tags.RESOURCE] == tags.CONSISTENT_SNAPSHOT
    assert one_copy["report"].calls_refused == []
    (alert,) = [a for a in one_copy["report"].alerts if "re-verification" in a["subject"]]
    assert snapshot_id in alert["subject"]
