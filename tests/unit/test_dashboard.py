"""The dashboard and the alarms watch the metrics the handlers really emit, by name."""

import json
from pathlib import Path
from typing import Any

import pytest

from tools.cfn_template import load_template
from vss_restore import observability

TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
SERVICE = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
EMITTED = {
    value
    for name, value in vars(observability).items()
    if name.isupper() and isinstance(value, str) and name != "METRICS_NAMESPACE"
}


def _dashboard_metrics() -> list[list[Any]]:
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body.replace("${AWS::Region}", "us-east-1"))["widgets"]
    return [metric for widget in widgets for metric in widget["properties"]["metrics"]]


def _alarms() -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def test_every_dashboard_metric_is_one_the_handlers_emit() -> None:
    metrics = _dashboard_metrics()

    assert metrics
    for namespace, name, dimension, value, *_ in metrics:
        assert namespace == observability.METRICS_NAMESPACE
        assert name in EMITTED, f"{name} is on the dashboard but no handler emits it"
        assert (dimension, value) == ("service", SERVICE)


def test_the_dashboard_shows_verdicts_durations_and_temporary_volumes() -> None:
    shown = {metric[1] for metric in _dashboard_metrics()}

    assert {
        observability.RESTORE_VERIFIED,
        observability.RESTORE_FAILED,
        observability.RESTORE_DURATION,
        observability.REVERT_DURATION,
        observability.TEMPORARY_VOLUME_CREATED,
        observability.TEMPORARY_VOLUME_DELETED,
    } <= shown


@pytest.mark.parametrize("alarm", sorted(_alarms()))
def test_every_alarm_watches_an_emitted_metric_and_alerts(alarm: str) -> None:
    properties = _alarms()[alarm]

    assert properties["Namespace"] == observability.METRICS_NAMESPACE
    assert properties["MetricName"] in EMITTED
    assert properties["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
    assert {"Ref": "AlertTopic"} in properties["AlarmActions"]


def test_no_verification_for_26_hours_raises_the_alarm() -> None:
    alarm = _alarms()["NoVerificationAlarm"]

    assert alarm["MetricName"] == observability.RESTORE_VERIFIED
    assert alarm["Period"] * alarm["EvaluationPeriods"] == 26 * 3600
    assert alarm["TreatMissingData"] == "breaching"


def test_any_failure_raises_the_failure_alarm() -> None:
    alarm = _alarms()["RestoreFailedAlarm"]

    assert alarm["MetricName"] == observability.RESTORE_FAILED
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
    )


def test_an_unverified_instance_raises_its_alarm_within_the_hour() -> None:
    alarm = _alarms()["UnverifiedInstancesAlarm"]

    assert alarm["MetricName"] == observability.UNVERIFIED_INSTANCES
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 3600, 1)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
    )
    # No count at all: the hourly look stopped, which must not pass for "all verified".
    assert alarm["TreatMissingData"] == "breaching"
    assert {"Ref": "AlertTopic"} in alarm["OKActions"]


def test_the_hourly_look_runs_every_hour_and_the_dashboard_shows_its_count() -> None:
    events = RESOURCES["FindUnverifiedInstancesFunction"]["Properties"]["Events"]

    assert [e["Properties"]["Schedule"] for e in events.values()] == ["rate(1 hour)"]
    assert observability.UNVERIFIED_INSTANCES in {metric[1] for metric in _dashboard_metrics()}


def test_the_dashboard_shows_snapshots_kept_and_deleted_per_day() -> None:
    widgets = [m for m in _dashboard_metrics() if m[1].startswith(("Snapshots", "Consistent"))]

    assert {metric[1] for metric in widgets} == {
        observability.SNAPSHOTS_KEPT,
        observability.SNAPSHOTS_EXPIRED,
        observability.SNAPSHOTS_DELETED,
        observability.CONSISTENT_SNAPSHOT_DELETED,
    }
