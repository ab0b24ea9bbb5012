"""The restore workflow, run through the real ASL and handlers: each skip, each wait, each end."""

from typing import Any

import pytest

from simulator import Report, run_scenario
from vss_restore import tags
from vss_restore.logic import resolve


def _scenario(name: str, snapshot: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One Windows instance with a data volume D, the stack's helper, and a snapshot of D."""
    return {
        "name": name,
        "parameters": {"HelperMode": "named", "HelperInstanceIds": "${instance:helper}"},
        "instances": {
            "web1": {
                "volumes": [
                    {"alias": "C", "drive_letters": ["C"], "system": True},
                    {"alias": "D", "drive_letters": ["D"]},
                ]
            },
            "helper": {"helper": True},
        },
        "snapshots": {"snap": {"volume": "web1.D", **snapshot}},
        "steps": [{"deliver": {"snapshot": "snap", "event": "createSnapshot"}}],
        **extra,
    }


def _only_execution(report: Report) -> Any:
    assert len(report.executions) == 1, report.table()
    return report.executions[0]


@pytest.mark.parametrize(
    ("snapshot", "reason"),
    [
        pytest.param({"kind": "crash"}, resolve.NOT_VSS, id="not-vss-tagged"),
        pytest.param({"state": "pending"}, resolve.NOT_COMPLETED, id="not-completed"),
        pytest.param(
            {"tags": {tags.STATUS: tags.VERIFIED}}, resolve.ALREADY_VERIFIED, id="already-verified"
        ),
        pytest.param(
            {"tags": {tags.RESOURCE: tags.CONSISTENT_SNAPSHOT}},
            resolve.OWN_OUTPUT,
            id="made-by-vss-restore",
        ),
    ],
)
def test_a_snapshot_that_needs_no_restore_is_skipped_with_its_reason_and_nothing_made(
    snapshot: dict[str, Any], reason: str
) -> None:
    report = run_scenario(_scenario(f"skip-{reason}", snapshot))

    execution = _only_execution(report)
    assert execution.status == "SUCCEEDED"
    verdict = execution.output["verdicts"][0]
    assert (verdict["status"], verdict["reason"]) == ("skipped", reason)
    assert report.snapshot("snap").consistent_snapshot in (None, "")
    assert report.volumes_left == []
    assert report.lambda_invocations == 3  # read the request, resolve, report: nothing made


def test_a_volume_that_takes_minutes_is_waited_for_with_few_looks() -> None:
    slow = _scenario("slow-volume", {}, timing={"volume_available_seconds": 240})
    fast = _scenario("fast-volume", {})

    slow_report, fast_report = run_scenario(slow), run_scenario(fast)

    assert slow_report.snapshot("snap").verdict == "verified", slow_report.table()
    assert slow_report.snapshot("snap").content_consistent
    assert slow_report.volumes_left == []
    # Four minutes more on the clock; the growing waits look fewer times than botocore's
    # waiter would (one look every 15 s). A look costs three transitions (check, choice, wait).
    extra_seconds = slow_report.virtual_seconds - fast_report.virtual_seconds
    extra_looks = (slow_report.state_transitions - fast_report.state_transitions) / 3
    assert 240 <= extra_seconds <= 240 + 30
    assert 0 < extra_looks < 240 / 15


def test_an_on_demand_restore_can_keep_the_temporary_volume_for_inspection() -> None:
    scenario = _scenario("keep-volume", {})
    scenario["steps"] = [{"start": {"snapshot": "snap", "helper": "helper", "keep_volume": True}}]

    report = run_scenario(scenario)

    assert report.snapshot("snap").verdict == "verified"
    verdict = report.executions[0].output["verdicts"][0]
    kept = [v["volume_id"] for v in report.volumes_left]
    assert kept == [verdict["volume_kept"]]
    assert report.volumes_left[0]["attached_to"] == []  # detached, ready to attach elsewhere


def test_a_missing_recorded_shadow_copy_fails_the_snapshot_and_cleans_up() -> None:
    scenario = _scenario(
        "missing-shadow-copy",
        {"tags": {tags.SHADOW_COPY_ID: "{00000000-0000-4000-8000-000000000000}"}},
    )

    report = run_scenario(scenario)

    result = report.snapshot("snap")
    assert result.verdict == "failed"
    assert "RevertRefused" in result.reason
    assert "00000000-0000-4000-8000-000000000000" in result.reason
    execution = _only_execution(report)
    assert execution.status == "FAILED"
    assert execution.error == "RestoreFailed"
    assert report.volumes_left == []


def test_a_stopped_helper_is_refused_before_anything_is_created() -> None:
    scenario = _scenario("stopped-helper", {})
    scenario["instances"]["helper"]["state"] = "stopped"
    scenario["steps"] = [{"start": {"snapshot": "snap", "helper": "helper"}}]

    report = run_scenario(scenario)

    result = report.snapshot("snap")
    assert result.verdict == "failed"
    assert "HelperNotUsable" in result.reason
    assert "stopped" in result.reason
    assert report.volumes_left == []
