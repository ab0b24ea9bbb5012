"""Issue #14's scenarios, run whole: the simulated Windows as strict as its documentation, and
the safe outcome a user sees (verdicts, disks left as they were, no reboot, no boot hazard)."""

from pathlib import Path

import boto3
import pytest

from simulator import Simulation, load
from tests.simulator.runs import Run, failures, finished_run
from vss_restore.logic.disk_tool import STDOUT_KEPT

SCENARIOS = Path(__file__).resolve().parents[2] / "simulator" / "scenarios"


@pytest.fixture(scope="module")
def reboots() -> Run:
    return finished_run(SCENARIOS / "reboot-before-detach.json")


def test_a_clone_of_the_helpers_boot_disk_never_shares_its_guid_across_a_reboot(
    reboots: Run,
) -> None:
    assert reboots.report.ok, failures(reboots.report)
    assert len(reboots.report.reboots) == 2
    assert reboots.report.boot_hazards == []
    for alias in ("night1.C", "night1.D"):
        result = reboots.report.snapshot(alias)
        assert (result.verdict, result.identity_preserved) == ("verified", True)
    # The helper's own disk is as it was, its GUID that of web1's C: all along.
    assert reboots.own_disks_after == reboots.own_disks_before
    assert reboots.disks_after["helper"] == [reboots.volume_ids["helper.C"]]


def test_a_volume_windows_would_not_let_be_scanned_fails_saying_so_not_that_it_is_damaged() -> None:
    run = finished_run(SCENARIOS / "read-only-scan.json")
    assert run.report.ok, failures(run.report)
    failed = run.report.snapshot("night1.C")
    assert failed.verdict == "failed"
    assert "could not be scanned, no finding either way" in failed.reason
    # Repair-Volume refused on the read-only disk, read-only chkdsk scanned D: clean.
    verified = run.report.snapshot("night1.D")
    assert (verified.verdict, verified.content_consistent) == ("verified", True)
    assert run.report.volumes_left == []


# -- each of issue #14's scenarios, its safe outcome as a user sees it ------------------------


def _untouched_own_disks(run: Run, instance: str) -> None:
    """The instance's own disks: same number, state and identity, nothing reverted on them."""
    for alias, before in run.own_disks_before.items():
        if alias.startswith(f"{instance}."):
            after = run.own_disks_after[alias]
            assert (after.number, after.online, after.read_only) == (
                before.number,
                before.online,
                before.read_only,
            )
            assert after.content.identity == before.content.identity
            assert [p.reverted_to for p in after.content.partitions] == [
                p.reverted_to for p in before.content.partitions
            ]


def test_an_asynchronous_revert_is_waited_for_and_both_restores_are_verified() -> None:
    run = finished_run(SCENARIOS / "async-revert.json")
    assert run.report.ok, failures(run.report)
    for alias in ("night1.C", "night1.D"):
        result = run.report.snapshot(alias)
        assert (result.verdict, result.content_consistent, result.identity_preserved) == (
            "verified",
            True,
            True,
        )
        assert result.shadow_copies_reverted == [run.backup_shadows[alias][alias[-1]]]
    # VSS went on reverting for 300 s after DiskShadow returned: that Revert ran that much longer.
    reverts = [c for c in run.commands if c.action == "Revert"]
    spans = sorted((c.ended_at - c.started_at).total_seconds() for c in reverts)  # type: ignore[operator]
    assert spans[1] - spans[0] >= 300
    assert run.own_disks_after == run.own_disks_before
    assert run.disks_after["helper"] == [run.volume_ids["helper.C"]]
    assert run.report.volumes_left == []


def test_a_validation_script_any_user_could_change_is_refused_and_never_run() -> None:
    run = finished_run(SCENARIOS / "validation-script-refused.json")
    assert run.report.ok, failures(run.report)
    result = run.report.snapshot("night1.D")
    assert result.verdict == "failed"
    assert "c:\\users\\public may be written by BUILTIN\\Users" in result.reason
    assert result.consistent_snapshot is None  # nothing is kept of a restore not checked
    (check,) = [c for c in run.commands if c.action == "Check"]
    assert check.parameters["ValidationScript"] == "C:\\Users\\Public\\validate.ps1"
    assert run.report.reboots == []
    _untouched_own_disks(run, "helper")
    assert run.disks_after["helper"] == [run.volume_ids["helper.C"]]
    assert run.report.volumes_left == []


def test_a_validation_script_exiting_3010_fails_the_check_and_never_reboots_the_helper() -> None:
    run = finished_run(SCENARIOS / "validation-exit-3010.json")
    assert run.report.ok, failures(run.report)
    result = run.report.snapshot("night1.D")
    assert result.verdict == "failed"
    assert "C:\\vss-restore\\validate.ps1 exited 3010" in result.reason
    assert result.consistent_snapshot is None
    # The disk tool itself exited 0 (the check ran): the agent ran it once, never again.
    assert run.actions("night1.D") == ["Inspect", "Revert", "Check"]
    assert run.report.reboots == []
    _untouched_own_disks(run, "helper")
    assert run.report.volumes_left == []


def test_a_clone_of_the_helpers_boot_disk_is_verified_and_the_boot_disk_never_touched() -> None:
    run = finished_run(SCENARIOS / "boot-disk-collision.json")
    assert run.report.ok, failures(run.report)
    for alias in ("night1.C", "night1.D"):
        result = run.report.snapshot(alias)
        assert (result.verdict, result.identity_preserved) == ("verified", True)
    # Windows gave only the clone of C: a new GUID; the helper's boot disk kept its own.
    assert set(run.rewritten["helper"]) <= set(run.restored_volumes)
    assert run.rewritten["helper"]
    assert run.own_disks_after == run.own_disks_before
    assert run.consistent_tags["night1.C"]  # made, and skipped by its own event
    assert run.report.boot_hazards == []
    assert run.report.reboots == []
    assert run.disks_after["helper"] == [run.volume_ids["helper.C"]]


def test_a_shadow_copy_id_on_the_live_disk_and_its_clone_is_never_reverted() -> None:
    run = finished_run(SCENARIOS / "duplicate-shadow-ids.json")
    assert run.report.ok, failures(run.report)
    night1 = run.backup_shadows["night1.D"]["D"]
    refused = run.report.snapshot("night1.D")
    assert refused.verdict == "failed"
    assert f"shadow copy {night1} exists 2 times on this instance" in refused.reason
    assert refused.shadow_copies_reverted == []
    assert run.actions("night1.D") == ["Inspect", "Revert"]
    # web1's live D: still holds night1's shadow copy, and was never reverted to it.
    live_d = run.own_disks_after["web1.D"].content
    assert night1 in [s.id for s in live_d.shadow_copies]
    _untouched_own_disks(run, "web1")
    # The same helper then reverts night2's copy, on the clone alone.
    verified = run.report.snapshot("night2.D")
    assert (verified.verdict, verified.content_consistent) == ("verified", True)
    assert verified.shadow_copies_reverted == [run.backup_shadows["night2.D"]["D"]]
    assert run.disks_after["web1"] == [run.volume_ids["web1.C"], run.volume_ids["web1.D"]]
    assert run.report.volumes_left == []


def test_a_disk_number_freed_by_a_forced_detach_is_never_acted_on_by_the_old_command() -> None:
    run = finished_run(SCENARIOS / "disk-number-reused.json")
    assert run.report.ok, failures(run.report)
    first_check, second_check = [c for c in run.commands if c.action == "Check"]
    assert first_check.snapshot == "night1.D"
    assert second_check.snapshot == "night2.D"
    # The aborted restore's Check was stopped before the next disk came: it ended first.
    assert first_check.ended_at is not None
    assert second_check.started_at is not None
    assert first_check.ended_at < second_check.started_at
    # Windows gave night2's clone the number night1's had; only night2's commands used it.
    assert first_check.parameters["DiskNumber"] == second_check.parameters["DiskNumber"] == "1"
    night2 = run.report.snapshot("night2.D")
    assert (night2.verdict, night2.content_consistent, night2.identity_preserved) == (
        "verified",
        True,
        True,
    )
    assert run.report.snapshot("night1.D").consistent_snapshot is None
    assert run.own_disks_after == run.own_disks_before
    assert run.disks_after["helper"] == [run.volume_ids["helper.C"]]
    assert run.report.volumes_left == []


def test_a_crowded_disks_compact_report_fits_and_only_the_backups_copy_is_reverted() -> None:
    run = finished_run(SCENARIOS / "many-shadow-copies.json")
    assert run.report.ok, failures(run.report)
    assert len(run.shadows_inside["crowded.D"]) == 121  # 93 fitted before the report was compact
    result = run.report.snapshot("crowded.D")
    assert (result.verdict, result.content_consistent) == ("verified", True)
    assert result.shadow_copies_reverted == [run.backup_shadows["crowded.D"]["D"]]
    assert run.report.volumes_left == []


def test_output_cut_at_24000_characters_fails_the_restore_saying_so_never_guessing() -> None:
    with Simulation(load(SCENARIOS / "report-cut.json")) as simulation:
        report = simulation.run()
        (inspect,) = [i for i in simulation.agents.log if i.document.is_disk_tool]
        answer = boto3.client("ssm", region_name=simulation.world.region).get_command_invocation(
            CommandId=inspect.command_id, InstanceId=inspect.instance_id
        )
        assert inspect.run is not None
        printed = inspect.run.stdout
    assert report.ok, failures(report)
    # The script's report fitted; a module's warning after it ran past what SSM keeps.
    kept = answer["StandardOutputContent"]
    assert len(printed) > STDOUT_KEPT
    assert printed.index('{"schema"') < STDOUT_KEPT
    assert kept == printed[:STDOUT_KEPT]
    result = report.snapshot("crowded.D")
    assert result.verdict == "failed"
    assert result.reason.startswith("DiskToolReportCut: Inspect of vol-")
    assert "the report was cut" in result.reason
    assert report.disk_tool_commands == {"Inspect": 1}
    assert result.shadow_copies_reverted == []
    assert result.consistent_snapshot is None
    assert report.volumes_left == []
