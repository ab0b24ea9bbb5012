"""The retention over many simulated nights: the real RetentionFunction fired by its schedule,
its role from template.yaml judging every call, on the simulated account's snapshots.

The nights step (simulator/nights.py) keeps 40 nights fast: each night the real backup, and
each drive's restore written as the workflow leaves it (a consistent snapshot with its
lineage, the verdict on the source), without running the workflow (the other scenarios
do). The schedules fire as deployed: the retention at noon, the reconciliation, the weekly
re-verification (the real workflow).
"""

import json
from datetime import date
from typing import Any

import pytest

from simulator import Simulation, load, run_scenario
from simulator.report import Report, check_expectations
from simulator.scenario import ScenarioError
from tests.simulator.runs import SCENARIOS, failures
from vss_restore import tags

BOUND = 7 + 4 + 3  # the default keeps: points per drive, a backup and a consistent snapshot each


@pytest.fixture(scope="module")
def forty() -> Report:
    return run_scenario(SCENARIOS / "retention-40-nights.json")


def _nights_kept(report: Report, drive: str, kind: str) -> set[int]:
    """The nights (numbers) whose backup, or consistent snapshot, of `drive` is still there."""
    assert report.nights is not None
    suffix = f".{drive}.consistent" if kind == "consistent" else f".{drive}"
    return {
        int(alias.removeprefix("night").split(".", 1)[0])
        for alias in report.nights["kept"]
        if alias.endswith(suffix)
    }


def test_forty_nights_keep_the_retentions_nights_and_delete_the_rest(forty: Report) -> None:
    report = forty
    assert report.ok, failures(report)
    # Each drive keeps the newest point of the last 7 nights (Dec 4-10: nights 34-40), of
    # the last 4 ISO weeks (Dec 10, 6, Nov 29, 22) and of the last 3 months that have one
    # (Dec 10, Nov 30), each a backup and its consistent snapshot,
    expected = {22, 29, 30, *range(34, 41)}
    assert {date(2026, 11, n) if n <= 30 else date(2026, 12, n - 30) for n in expected} == {
        *(date(2026, 12, d) for d in range(4, 11)),
        date(2026, 11, 22),
        date(2026, 11, 29),
        date(2026, 11, 30),
    }
    for drive in ("C", "D"):
        assert _nights_kept(report, drive, "consistent") == expected
    assert _nights_kept(report, "C", "backup") == expected
    # plus the backup being restored (night 1, D:), whose consistent snapshot expired;
    assert _nights_kept(report, "D", "backup") == expected | {1}
    assert report.nights is not None
    assert not report.nights["held_lost"]
    # never more than the bound of points per drive at the end of any day,
    assert report.nights["max_snapshots_per_drive"] <= 2 * BOUND + 1
    assert all(max(day["snapshots"].values()) <= 2 * BOUND + 1 for day in report.nights["days"])
    # and the snapshots that are not ours are all still there (whatever their tags).
    assert report.nights["not_ours_lost"] == []
    declared = {"aws-own", "marker-only", "production-with-our-tags"}
    assert declared <= {s.alias for s in report.snapshots if s.origin == "declared"}


def test_forty_nights_delete_with_an_alert_and_every_call_allowed(forty: Report) -> None:
    report = forty
    deletions = [a for a in report.alerts if "expired snapshot(s) deleted" in a["subject"]]
    # From day 9 (the first night past 7 daily keeps and its week's), one alert a day
    # that expired something: 28 of those 32 days.
    assert len(deletions) == 28
    assert not any("would be deleted" in a["message"] for a in deletions)
    assert "Kept per drive:" in deletions[-1]["message"]
    retention = [
        e for e in report.lambda_errors if e["function"] == "RetentionFunction"
    ]  # none failed
    assert retention == []
    assert report.calls_allowed > 0
    assert report.calls_refused == []


def test_forty_nights_reverify_weekly_and_the_runs_table_shows_each_day(forty: Report) -> None:
    report = forty
    reverified = [e for e in report.executions if e.name.startswith("reverify-")]
    assert len(reverified) == 5  # day 7, 14, 21, 28, 35
    assert all(e.status == "SUCCEEDED" for e in reverified)
    table = report.table()
    assert "night40  2026-12-10  20  21  119" in table  # C:, D: (the held one) and deleted
    assert "nights of web1: 40, 160 snapshots made, 41 kept, 119 deleted" in table


def test_the_default_is_a_dry_run_that_says_what_it_would_delete() -> None:
    report = run_scenario(SCENARIOS / "retention-dry-run.json")
    assert report.ok, failures(report)
    assert report.nights is not None
    # Nothing is deleted: 6 nights of 2 drives, each a backup and a consistent snapshot,
    assert (report.nights["made"], len(report.nights["kept"])) == (24, 24)
    # and the last alert lists the 3 oldest nights' 12 snapshots it would delete.
    last = report.alerts[-1]
    assert last["subject"] == "vss-restore: 12 expired snapshot(s) would be deleted (dry run)"
    assert last["message"].count("expired: outside the last 3 nights") == 12
    assert "DeleteExpiredSnapshots is false: nothing was deleted" in last["message"]


def _one_copy_scenario() -> dict[str, Any]:
    scenario: dict[str, Any] = json.loads((SCENARIOS / "retention-dry-run.json").read_text())
    scenario["name"] = "retention-one-copy"
    scenario["parameters"] = {
        **scenario["parameters"],
        "DeleteExpiredSnapshots": "true",
        "OneCopy": "true",
        "KeepDaily": "7",
    }
    scenario["steps"] = [{"nights": {"count": 4, "instance": "web1"}}]
    scenario["expect"] = {"lambda_errors": 0}
    return scenario


def test_one_copy_keeps_the_consistent_snapshot_alone_once_verified() -> None:
    # Given OneCopy with deletion on, when 4 nights pass,
    with Simulation(load(_one_copy_scenario())) as simulation:
        report = simulation.run()
        ec2 = simulation.ec2_client()
        listed = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        status = {s["SnapshotId"]: tags.as_dict(s.get("Tags")).get(tags.STATUS) for s in listed}
        ids = dict(simulation.aliases.snapshots)
    assert report.ok, failures(report)
    assert report.nights is not None
    # then the 3 older nights keep only their consistent snapshot, now tagged verified
    # itself, and the newest night both (the hourly look reads its source's verdict).
    for drive in ("C", "D"):
        assert _nights_kept(report, drive, "backup") == {4}
        assert _nights_kept(report, drive, "consistent") == {1, 2, 3, 4}
    consistent = {s for s in status if s not in ids.values()}
    marked = [s for s in status if status[s] == tags.VERIFIED]
    assert len(marked) == 2 * 3 + 2  # 6 consistent ones marked, the 2 newest sources
    assert len(consistent & set(marked)) == 6


def test_a_hold_the_nights_never_make_is_refused_naming_it() -> None:
    scenario = _one_copy_scenario()
    scenario["steps"] = [{"nights": {"count": 2, "instance": "web1", "hold": "night3.D"}}]
    with (
        Simulation(load(scenario)) as simulation,
        pytest.raises(ScenarioError, match=r"hold 'night3\.D' is none of the nights' snapshots"),
    ):
        simulation.run()


def test_a_run_whose_nights_lost_a_held_or_foreign_snapshot_fails_whatever_it_expects() -> None:
    nights = {
        "instance": "web1",
        "count": 1,
        "made": 4,
        "kept": ["night1.C", "night1.C.consistent", "night1.D", "night1.D.consistent"],
        "deleted": [],
        "max_snapshots_per_drive": 2,
        "days": [],
        "snapshot_ids": {},
        "held": "night1.D",
        "held_lost": True,
        "not_ours_lost": ["aws-own"],
    }
    report = Report("x", 0.0, [], [], [], ok=False, nights=nights)
    found = check_expectations(report, {})
    assert "nights: night1.D was deleted while being restored" in found
    assert "nights: aws-own (not ours) was deleted" in found
    # and each expectation of expect.nights is held to.
    wanted = {"kept": ["night1.C"], "max_snapshots_per_drive": 1, "deleted": 1}
    found = check_expectations(report, {"nights": wanted})
    assert any("kept lacks [], keeps besides" in f for f in found)
    assert "nights: a drive held 2 snapshots, more than 1" in found
    assert "nights: 0 deleted, expected 1" in found
    last = {"last_alert": {"subject": "s"}}
    assert "no alert was published, expected a last one" in check_expectations(
        report, {"nights": last}
    )
