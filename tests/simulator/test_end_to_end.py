"""The real template, ASL and handlers restore simulated VSS snapshots end to end."""

from simulator.report import check_expectations
from tests.simulator.runs import SCENARIOS, Run, failures, finished_run
from vss_restore import tags


def test_the_nightly_backup_ends_with_verified_snapshots_and_nothing_left(nightly: Run) -> None:
    report = nightly.report
    assert report.ok, failures(report)
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


def test_a_consistent_snapshot_says_whose_drive_it_holds_and_from_when(nightly: Run) -> None:
    # #15: "D: of web1 as of last night" is found from the consistent snapshot alone.
    for alias in ("night1.C", "night1.D"):
        source, consistent = nightly.source_tags[alias], nightly.consistent_tags[alias]
        for key in (tags.INSTANCE_ID, tags.DRIVE_LETTERS, tags.DEVICE, tags.SHADOW_SET_ID):
            assert consistent[key] == source[key], key
        assert consistent[tags.SOURCE_SNAPSHOT] == nightly.snapshot_ids[alias]
        assert consistent[tags.BACKUP_TIME].startswith("2026-11-25T00:")
        assert consistent[tags.BACKUP_TIME].endswith("Z")
        assert tags.STATUS not in consistent  # a verdict belongs on the source only


def test_the_workflows_own_snapshots_start_executions_that_skip_them(nightly: Run) -> None:
    own = [s for s in nightly.report.snapshots if s.origin == "workflow"]
    assert {s.alias for s in own} == {"night1.C.consistent", "night1.D.consistent"}
    assert all(s.verdict == "skipped" for s in own)
    assert len(nightly.report.executions) == 4
    assert all(e.status == "SUCCEEDED" for e in nightly.report.executions)


def test_an_on_demand_restore_ignores_an_older_shadow_copy() -> None:
    run = finished_run(SCENARIOS / "on-demand.json")
    assert run.report.ok, failures(run.report)
    assert run.report.executions[0].started_by == "on-demand"
    recorded = run.source_tags["last-night.D"][tags.SHADOW_COPY_ID]
    assert run.report.snapshot("last-night.D").shadow_copies_reverted == [recorded]
    # One restore: the helper had one volume attached at a time, and nobody was alerted.
    assert run.report.peak_attached == {"helper": 1}
    assert run.report.alerts == []
    assert check_expectations(run.report, {"max_attached_per_helper": 0}) == [
        "helper had 1 volumes attached at once, more than 0"
    ]


def test_one_multi_volume_event_restores_every_snapshot_it_names() -> None:
    report = finished_run(SCENARIOS / "multi-volume.json").report
    assert report.ok, failures(report)
    assert report.executions[0].started_by == "event MultiVolumeSnapshotsCompleted"


def test_a_revert_windows_refuses_fails_the_snapshot_and_cleans_up() -> None:
    document = {
        "name": "revert-refused",
        "parameters": {"HelperMode": "named", "HelperInstanceIds": "${instance:helper}"},
        "instances": {"web1": {}, "helper": {"helper": True}},
        "steps": [{"backup": "web1", "name": "night1"}],
        "faults": [{"windows": "Revert", "error": "VSS_E_VOLUME_IN_USE: the volume is in use"}],
    }
    run = finished_run(document)
    result = run.report.snapshot("night1.C")
    assert result.verdict == "failed"
    assert "VSS_E_VOLUME_IN_USE" in (result.error or "") + result.reason
    assert run.source_tags["night1.C"][tags.STATUS] == tags.FAILED
    assert run.report.volumes_left == []
    # The operator is told, on the stack's alert topic, which snapshot failed and why.
    (alert,) = run.report.alerts
    assert run.snapshot_ids["night1.C"] in alert["subject"]
    assert "VSS_E_VOLUME_IN_USE" in alert["message"]


def test_an_inspect_report_longer_than_ssm_keeps_fails_the_restore_saying_it_would_not_fit() -> (
    None
):
    run = finished_run(SCENARIOS / "long-inspect-report.json")
    assert run.report.ok, failures(run.report)
    assert len(run.shadows_inside["crowded.D"]) == 241  # 120 live, 120 older, the backup's
    result = run.report.snapshot("crowded.D")
    assert result.verdict == "failed"
    assert result.reason == run.source_tags["crowded.D"][tags.REASON]
    assert result.reason.startswith("CommandFailed: Inspect of vol-")
    assert "242 listed items) would not fit in the 24,000 characters" in result.reason
    assert run.actions("crowded.D") == ["Inspect"]  # nothing reverted on half a report
    # The cleanup ran: nothing attached to the helper, no volume left, the operator told.
    assert run.disks_after["helper"] == [run.volume_ids["helper.C"]]
    assert run.report.volumes_left == []
    (alert,) = run.report.alerts
    assert "would not fit in the 24,000 characters" in alert["message"]
