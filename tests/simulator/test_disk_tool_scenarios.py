"""Issue #14's scenarios, run whole: the simulated Windows as strict as its documentation, and
the safe outcome a user sees (verdicts, disks left as they were, no reboot, no boot hazard)."""

from pathlib import Path

import pytest

from tests.simulator.runs import Run, failures, finished_run

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
