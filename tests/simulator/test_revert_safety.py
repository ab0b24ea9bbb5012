"""Issue #3: the revert touches exactly the right shadow copy on exactly the attached disk,
keeps the disk's identity, and the check after it decides the verdict."""

from typing import Any

import pytest

from simulator.report import SnapshotResult
from tests.simulator.runs import SCENARIOS, Run, failures, finished_run
from vss_restore import tags
from vss_restore.logic.verdict import VERIFY_ONLY_RULE as VERIFY_ONLY

VALIDATE = "C:\\vss-restore\\validate.ps1"
STALE = "{00000000-0000-4000-8000-00000000dead}"


def _verified(run: Run, alias: str) -> SnapshotResult:
    """What an operator sees of a snapshot the workflow verified."""
    result = run.report.snapshot(alias)
    assert result.verdict == "verified", failures(run.report)
    assert run.source_tags[alias][tags.STATUS] == tags.VERIFIED
    assert run.source_tags[alias][tags.RESULT_SNAPSHOT] == result.consistent_snapshot
    assert run.execution_of(alias).status == "SUCCEEDED"
    assert (result.content_consistent, result.identity_preserved) == (True, True)
    assert run.report.volumes_left == []
    return result


def _failed(run: Run, alias: str, *reason_says: str) -> SnapshotResult:
    """What an operator sees of a snapshot the workflow failed: why, and nothing kept."""
    result = run.report.snapshot(alias)
    assert result.verdict == "failed", failures(run.report)
    reason = run.source_tags[alias][tags.REASON]
    assert run.source_tags[alias][tags.STATUS] == tags.FAILED
    for words in reason_says:
        assert words in reason
    execution = run.execution_of(alias)
    assert (execution.status, execution.error) == ("FAILED", "RestoreFailed")
    assert result.consistent_snapshot is None
    assert f"{alias}.consistent" not in {s.alias for s in run.report.snapshots}
    assert run.report.volumes_left == []
    return result


def _untouched(run: Run, instance: str) -> None:
    """The instance's own disks: same numbers, state, identity, partitions, shadow copies."""
    own = [alias for alias in run.own_disks_before if alias.startswith(instance + ".")]
    assert own
    for alias in own:
        assert run.own_disks_after[alias] == run.own_disks_before[alias], alias
    assert not {run.volume_ids[alias] for alias in own} & set(run.rewritten[instance])


# -- several shadow copies: only the right one is reverted ----------------------------------


@pytest.fixture(scope="module")
def shadow_choice() -> Run:
    return finished_run(SCENARIOS / "shadow-copy-choice.json")


def test_of_several_shadow_copies_only_the_recorded_one_is_reverted(shadow_choice: Run) -> None:
    assert shadow_choice.report.ok, failures(shadow_choice.report)
    result = _verified(shadow_choice, "recorded.D")
    recorded = shadow_choice.source_tags["recorded.D"][tags.SHADOW_COPY_ID]
    # Two live ones left by earlier tools, one of a night whose `delete shadows` did not
    # run, and the backup's own.
    assert len(shadow_choice.shadows_inside["recorded.D"]) == 4
    assert result.shadow_copies_reverted == [recorded]
    assert shadow_choice.actions("recorded.D") == ["Inspect", "Revert", "Check"]


def test_with_no_id_recorded_the_newest_on_that_volume_is_reverted(shadow_choice: Run) -> None:
    result = _verified(shadow_choice, "unrecorded.E")
    assert tags.SHADOW_COPY_ID not in shadow_choice.source_tags["unrecorded.E"]
    assert len(shadow_choice.shadows_inside["unrecorded.E"]) == 4
    assert result.shadow_copies_reverted == [shadow_choice.backup_shadows["unrecorded.E"]["E"]]


def test_a_helper_whose_own_disks_share_the_signature_touches_only_the_attached_disk(
    shadow_choice: Run,
) -> None:
    before = shadow_choice.own_disks_before
    # Built from the same image: the helper's C: has web1's E: GUID, its D: web1's D: signature.
    assert before["helper.C"].content.identity == before["web1.E"].content.identity
    assert before["helper.D"].content.identity == before["web1.D"].content.identity
    assert before["helper.C"].content.shadow_copies
    assert before["helper.D"].content.shadow_copies
    # Each clone was renamed by Windows once, when the Inspect first onlined it, kept that
    # identity while attached (#14, findings 6-7), and got its own back in the last action...
    clones = {c.parameters["VolumeId"] for c in shadow_choice.commands}
    assert sorted(shadow_choice.rewritten["helper"]) == sorted(clones)
    # ...so it kept its identity; the helper's own disks are as they were.
    for alias in ("recorded.D", "unrecorded.E"):
        assert shadow_choice.report.snapshot(alias).identity_preserved is True
    _untouched(shadow_choice, "helper")


def test_recorded_shadow_copies_of_another_night_are_refused_before_any_revert(
    failing: Run,
) -> None:
    # The workflow test covers one missing ID; here a two-drive disk whose tag names
    # the shadow copies of an earlier backup: neither drive may be reverted.
    stale = failing.source_tags["second.data"][tags.SHADOW_COPY_ID].split(",")
    assert len(stale) == 2
    assert not set(stale) & set(failing.shadows_inside["second.data"])
    result = _failed(failing, "second.data", "RevertRefused", *stale)
    assert failing.actions("second.data") == ["Inspect"]
    assert result.shadow_copies_reverted == []


# -- the disk's identity --------------------------------------------------------------------


def test_mbr_and_gpt_clones_keep_their_identity_when_the_instance_is_its_own_helper() -> None:
    run = finished_run(SCENARIOS / "own-helper-identities.json")
    assert run.report.ok, failures(run.report)
    styles = {a: run.own_disks_before[f"web1.{a}"].content.partition_style for a in "CD"}
    assert styles == {"C": "GPT", "D": "MBR"}
    restored = {c.parameters["VolumeId"] for c in run.commands}
    for drive in "CD":
        _verified(run, f"night1.{drive}")
    # Each clone clashed with web1's own disk when the Inspect first onlined it and was given
    # a new identity by Windows, which it kept while attached; the last action wrote the
    # original back while the disk was offline (#14, findings 6-7).
    assert sorted(run.rewritten["web1"]) == sorted(restored)
    _untouched(run, "web1")


# -- verify-only: consistent already, checked, never reverted -------------------------------


def test_a_snapshot_made_by_aws_vss_is_checked_and_never_reverted() -> None:
    run = finished_run(SCENARIOS / "verify-only.json")
    assert run.report.ok, failures(run.report)
    assert run.report.disk_tool_commands == {"Inspect": 2, "Check": 2}
    for alias in ("aws.C", "aws.D"):
        result = _verified(run, alias)
        assert run.actions(alias) == ["Inspect", "Check"]
        assert result.consistent_snapshot == run.snapshot_ids[alias]  # its own
        assert result.shadow_copies_reverted == []
        assert "consistent already" in run.source_tags[alias][tags.REASON]
    (verdicts,) = [e.output["verdicts"] for e in run.report.executions]
    assert {v["rule"] for v in verdicts} == {VERIFY_ONLY}
    assert [s.alias for s in run.report.snapshots if s.origin == "workflow"] == []


# -- the check decides ----------------------------------------------------------------------


def test_a_scan_that_finds_damage_fails_the_snapshot_and_keeps_nothing() -> None:
    run = finished_run(SCENARIOS / "check-findings.json")
    assert run.report.ok, failures(run.report)
    _failed(run, "night1.C", "CheckFailed", "FullRepairNeeded")
    assert run.actions("night1.C") == ["Inspect", "Revert", "Check"]
    _verified(run, "night1.D")
    checks = [c for c in run.commands if c.action == "Check"]
    assert [c.parameters["ValidationScript"] for c in checks] == [VALIDATE, VALIDATE]


@pytest.fixture(scope="module")
def failing() -> Run:
    """Three helpers with different validation scripts, and snapshots that must fail."""
    helper: dict[str, Any] = {"helper": True}
    return finished_run(
        {
            "name": "check-failures",
            "parameters": {"HelperMode": "named", "ValidationScript": VALIDATE},
            "instances": {
                "web1": {
                    "volumes": [
                        {"alias": "C", "system": True, "drive_letters": ["C"]},
                        {"alias": "D", "drive_letters": ["D"]},
                        {"alias": "data", "drive_letters": ["E", "F"]},
                    ]
                },
                "picky": {
                    **helper,
                    "validation_scripts": {
                        VALIDATE: {"exit_code": 3, "output": "DBCC CHECKDB: 2 allocation errors"}
                    },
                },
                "bare": helper,
                "good": {**helper, "validation_scripts": {VALIDATE: {"output": "all attach"}}},
            },
            "snapshots": {
                "night.D": {"volume": "web1.D"},
                "night.C": {"volume": "web1.C"},
                "fake.D": {
                    "volume": "web1.D",
                    "kind": "crash",
                    "tags": {tags.AWS_APP_CONSISTENT: "true", tags.AWS_VSS_CONFIG: "x"},
                },
                "first.data": {"volume": "web1.data"},
                "second.data": {
                    "volume": "web1.data",
                    "tags": {tags.SHADOW_COPY_ID: "${shadow:first.data.E},${shadow:first.data.F}"},
                },
            },
            "steps": [
                {"start": {"snapshot": "night.D", "helper": "picky"}},
                {"start": {"snapshot": "night.C", "helper": "bare"}},
                {"start": {"snapshot": "fake.D", "helper": "good"}},
                {"start": {"snapshot": "second.data", "helper": "good"}},
            ],
        }
    )


def test_a_failing_validation_script_fails_the_snapshot_with_its_exit_code(failing: Run) -> None:
    _failed(failing, "night.D", "CheckFailed", f"{VALIDATE} exited 3")
    assert failing.actions("night.D") == ["Inspect", "Revert", "Check"]


def test_a_missing_validation_script_fails_the_check_naming_it(
    failing: Run,
) -> None:
    _failed(failing, "night.C", "CheckFailed", f"validation script {VALIDATE} not found")
    assert failing.actions("night.C") == ["Inspect", "Revert", "Check"]


def test_a_crash_copy_passed_off_as_aws_vss_fails_its_scan(failing: Run) -> None:
    # Repair-Volume refused on the read-only disk: read-only chkdsk finds the half-done writes.
    result = _failed(failing, "fake.D", "CheckFailed", "chkdsk (read-only) ErrorsFoundOrNotChecked")
    assert failing.actions("fake.D") == ["Inspect", "Check"]
    assert result.content_consistent is False


def test_failures_leave_no_volume_no_snapshot_and_no_disk_behind(failing: Run) -> None:
    assert [e.status for e in failing.report.executions] == ["FAILED"] * 4
    assert failing.report.volumes_left == []
    assert [s.alias for s in failing.report.snapshots if s.origin == "workflow"] == []
    for helper in ("picky", "bare", "good"):
        _untouched(failing, helper)


# -- CheckAfterRevert=false ------------------------------------------------------------------


def test_check_after_revert_false_sends_no_check_but_verify_only_is_still_checked() -> None:
    run = finished_run(
        {
            "name": "no-check",
            "parameters": {
                "HelperMode": "named",
                "HelperInstanceIds": "${instance:helper}",
                "CheckAfterRevert": False,
            },
            "instances": {
                "web1": {
                    "volumes": [
                        {"alias": "C", "system": True, "drive_letters": ["C"]},
                        {"alias": "D", "drive_letters": ["D"]},
                    ]
                },
                "helper": {"helper": True},
            },
            "snapshots": {
                "night.D": {"volume": "web1.D"},
                "aws.D": {"volume": "web1.D", "kind": "aws-vss"},
            },
            "steps": [{"deliver": {"snapshots": ["night.D", "aws.D"]}}],
        }
    )
    _verified(run, "night.D")
    assert run.actions("night.D") == ["Inspect", "Revert"]
    _verified(run, "aws.D")
    assert run.actions("aws.D") == ["Inspect", "Check"]
