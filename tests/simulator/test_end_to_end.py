"""The real template, ASL and handlers restore simulated VSS snapshots end to end."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from simulator import Report, Simulation, load
from vss_restore import tags

SCENARIOS = Path(__file__).parents[2] / "simulator" / "scenarios"


@dataclass
class Run:
    """A finished run: the report, and what an operator could still look up afterwards."""

    report: Report
    source_tags: dict[str, dict[str, str]]  # snapshot alias -> tags
    rewritten_identities: list[str]


def _run(source: Path | dict[str, Any]) -> Run:
    with Simulation(load(source)) as simulation:
        report = simulation.run()
        found = simulation.ec2_client().describe_snapshots(
            SnapshotIds=list(simulation.aliases.snapshots.values())
        )["Snapshots"]
        by_id = {s["SnapshotId"]: tags.as_dict(s.get("Tags")) for s in found}
        return Run(
            report,
            {alias: by_id[i] for alias, i in simulation.aliases.snapshots.items()},
            [v for host in simulation.world.hosts.values() for v in host.rewritten],
        )


@pytest.fixture(scope="module")
def nightly() -> Run:
    return _run(SCENARIOS / "nightly-backup.json")


def _failures(report: Report) -> str:
    return "\n".join(report.failures) + "\n" + report.table()


def test_the_nightly_backup_ends_with_verified_snapshots_and_nothing_left(nightly: Run) -> None:
    report = nightly.report
    assert report.ok, _failures(report)
    assert report.volumes_left == []
    for alias in ("night1.C", "night1.D"):
        result = report.snapshot(alias)
        assert result.verdict == "verified"
        assert result.content_consistent
        consistent_tags = nightly.source_tags[alias]
        assert consistent_tags[tags.STATUS] == tags.VERIFIED
        assert consistent_tags[tags.RESULT_SNAPSHOT] == result.consistent_snapshot


def test_exactly_the_backups_own_shadow_copy_is_reverted(nightly: Run) -> None:
    for alias in ("night1.C", "night1.D"):
        recorded = nightly.source_tags[alias][tags.SHADOW_COPY_ID]
        assert nightly.report.snapshot(alias).shadow_copies_reverted == [recorded]


def test_the_workflows_own_snapshots_start_executions_that_skip_them(nightly: Run) -> None:
    own = [s for s in nightly.report.snapshots if s.origin == "workflow"]
    assert {s.alias for s in own} == {"night1.C.consistent", "night1.D.consistent"}
    assert all(s.verdict == "skipped" for s in own)
    assert len(nightly.report.executions) == 4
    assert all(e.status == "SUCCEEDED" for e in nightly.report.executions)


def test_an_on_demand_restore_ignores_an_older_shadow_copy() -> None:
    run = _run(SCENARIOS / "on-demand.json")
    assert run.report.ok, _failures(run.report)
    assert run.report.executions[0].started_by == "on-demand"
    recorded = run.source_tags["last-night.D"][tags.SHADOW_COPY_ID]
    assert run.report.snapshot("last-night.D").shadow_copies_reverted == [recorded]


def test_one_multi_volume_event_restores_every_snapshot_it_names() -> None:
    report = _run(SCENARIOS / "multi-volume.json").report
    assert report.ok, _failures(report)
    assert report.executions[0].started_by == "event MultiVolumeSnapshotsCompleted"


def test_the_backed_up_instance_can_be_its_own_helper_despite_the_signature_clash() -> None:
    scenario = load(SCENARIOS / "nightly-backup.json")
    document: dict[str, Any] = {
        "name": "self-helper",
        "instances": {"web1": {"helper": True}},
        "steps": [{"backup": "web1", "name": "night1"}],
    }
    assert scenario.parameters  # the demo names a separate helper; this one does not
    run = _run(document)
    result = run.report.snapshot("night1.C")
    assert (result.verdict, result.content_consistent) == ("verified", True), _failures(run.report)
    # Onlining the clone of web1's own C: made Windows rewrite its GUID; it was put back.
    assert run.rewritten_identities
    assert result.identity_preserved is True
    assert run.report.volumes_left == []


def test_a_revert_windows_refuses_fails_the_snapshot_and_cleans_up() -> None:
    document = {
        "name": "revert-refused",
        "parameters": {"HelperInstanceId": "${instance:helper}"},
        "instances": {"web1": {}, "helper": {"helper": True}},
        "steps": [{"backup": "web1", "name": "night1"}],
        "faults": [{"windows": "Revert", "error": "VSS_E_VOLUME_IN_USE: the volume is in use"}],
    }
    run = _run(document)
    result = run.report.snapshot("night1.C")
    assert result.verdict == "failed"
    assert "VSS_E_VOLUME_IN_USE" in (result.error or "") + result.reason
    assert run.source_tags["night1.C"][tags.STATUS] == tags.FAILED
    assert run.report.volumes_left == []
