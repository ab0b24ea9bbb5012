"""The shipped scenarios no other test runs, run whole, and a check that every shipped
scenario is run by some test: a scenario that only passes the schema proves nothing."""

import re
from pathlib import Path
from typing import Any

import pytest

from simulator import Simulation, load
from tests.simulator.runs import failures, finished_run

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "simulator" / "scenarios"


def test_every_shipped_scenario_is_run_by_a_test() -> None:
    shipped = {p.stem for p in SCENARIOS.glob("*.json")} - {"schema"}
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "tests").rglob("*.py"))
    # Named as a file ("x.json") or as the name a test builds the path from ("x").
    named = set(re.findall(r"([a-z0-9-]+)\.json", tests)) | set(
        re.findall(r'"([a-z0-9-]+)"', tests)
    )
    assert shipped - named == set(), "scenarios no test runs"


def test_a_backup_skips_what_it_cannot_shadow_says_so_and_the_rest_verifies() -> None:
    run = finished_run(SCENARIOS / "backup-skips.json")
    assert run.report.ok, failures(run.report)
    (backup,) = run.report.backups
    assert backup["ok"] is False
    problems = "\n".join(backup["problems"])
    assert "drive E: not backed up" in problems
    assert "mounted at C:\\Data with no drive letter: not backed up" in problems
    assert run.report.snapshot("night1.C").verdict == "verified"
    assert run.report.snapshot("night1.D").verdict == "verified"
    # Only C: and D: were snapshotted: nothing claims E: or the mount point was backed up.
    assert set(run.snapshot_ids) == {"night1.C", "night1.D"}


def test_encrypted_snapshots_verify_and_their_consistent_copies_keep_the_source_key() -> None:
    with Simulation(load(SCENARIOS / "encrypted-volumes.json")) as simulation:
        report = simulation.run()
        ec2: Any = simulation.ec2_client()
        keys = {
            s["SnapshotId"]: (s["Encrypted"], s.get("KmsKeyId"))
            for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        }
        ids = dict(simulation.aliases.snapshots)
    # The calls needing the keys (CreateVolume, AttachVolume: kms:CreateGrant) were allowed
    # under the stack's own roles: the run would fail on a refusal.
    assert report.ok, failures(report)
    assert report.calls_refused == []
    for alias in ("night1.C", "night1.D"):
        result = report.snapshot(alias)
        assert result.verdict == "verified", failures(report)
        source_key = keys[ids[alias]]
        assert source_key[0] is True
        # Incremental to its source only under the same key (#16): never re-encrypted.
        assert keys[result.consistent_snapshot] == source_key
    assert keys[ids["night1.C"]][1] != keys[ids["night1.D"]][1]  # aws/ebs and the CMK


def test_a_line_after_the_report_fails_the_restore_and_the_next_one_verifies() -> None:
    run = finished_run(SCENARIOS / "report-not-last.json")
    assert run.report.ok, failures(run.report)
    first, second = run.report.snapshot("first.D"), run.report.snapshot("second.D")
    assert first.verdict == "failed"
    assert "DiskToolReportInvalid: a line follows the JSON report" in first.reason
    assert second.verdict == "verified"
    assert run.report.volumes_left == []
    assert run.report.locks_held == {}


@pytest.fixture(scope="module")
def shadowed() -> Any:
    return finished_run(SCENARIOS / "shadowed-volume-not-reverted.json")


def test_a_shadowed_drive_without_its_copy_is_never_reverted_nor_verified(shadowed: Any) -> None:
    report = shadowed.report
    assert report.ok, failures(report)
    unrecorded, recorded = report.snapshot("unrecorded.data"), report.snapshot("recorded.data")
    assert unrecorded.verdict == recorded.verdict == "failed"
    assert "VolumeNotReverted: the backup shadowed 2 drives (D:, E:)" in unrecorded.reason
    assert "RevertRefused: the recorded shadow copy" in recorded.reason
    # Refused in the plan: no Revert was ever sent, so D: was not reverted alone either.
    assert report.disk_tool_commands.get("Revert", 0) == 0
    assert shadowed.actions("unrecorded.data") == ["Inspect"]
    assert shadowed.actions("recorded.data") == ["Inspect"]
    assert len(report.alerts) == 2
    assert unrecorded.consistent_snapshot is None
    assert recorded.consistent_snapshot is None


def test_each_volume_has_its_own_verdict_and_the_unrecorded_rule_is_called_weaker() -> None:
    run = finished_run(SCENARIOS / "volume-by-volume.json")
    report = run.report
    assert report.ok, failures(report)
    recorded = report.snapshot("recorded.data")
    assert recorded.verdict == "verified"
    assert len(recorded.shadow_copies_reverted) == 2
    assert recorded.drives_unreverted == []  # D: and E: both at the backup's point in time
    # The volume without a drive letter is left as it was and reported, never failed.
    assert "partition 4 not in backup" in recorded.volumes
    unrecorded = report.snapshot("unrecorded.data")
    assert unrecorded.verdict == "verified"
    assert "weaker rule" in unrecorded.reason
