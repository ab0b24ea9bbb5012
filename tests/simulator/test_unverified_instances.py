"""Issue #6: the hourly count of VSS-tagged instances without a backup verified in 26 hours.

One account, 27 virtual hours: the real template's hourly schedule fires the real handler,
and the test reads what an operator gets: the alerts on the topic and the metric the
UnverifiedInstancesAlarm watches (the handler's CloudWatch EMF lines).
"""

import json
from dataclasses import dataclass
from typing import Any

import pytest

from simulator import Report, Simulation, load
from vss_restore.observability import METRICS_NAMESPACE, UNVERIFIED_INSTANCES

HOUR = 3600
VSS = {"ConsistentSnapshot": "WindowsVSS"}
LONG_AGO = 30 * 24 * HOUR


def _scenario() -> dict[str, Any]:
    return {
        "name": "unverified-instances",
        "parameters": {"HelperMode": "named", "HelperInstanceIds": "${instance:helper}"},
        "instances": {
            "helper": {"helper": True},
            "verified": {"tags": VSS, "launched_before": LONG_AGO},
            "failing": {"tags": VSS, "launched_before": LONG_AGO},
            "never": {"tags": VSS, "launched_before": LONG_AGO},
            "new": {"tags": VSS},  # launched as the run starts
            "parked": {"tags": VSS, "launched_before": LONG_AGO, "state": "stopped"},
            "untagged": {"launched_before": LONG_AGO},
        },
        # The first revert (failing's, backed up first) fails on Windows.
        "faults": [{"windows": "Revert", "error": "VSS_E_VOLUME_IN_USE: the volume is in use"}],
        "steps": [
            {"backup": "failing", "name": "failing1"},
            {"backup": "verified", "name": "verified1"},
            # The schedule fires each hour from the start: +1 h, +2 h, ... +27 h.
            {"advance": 27 * HOUR + 60},
        ],
    }


@dataclass(frozen=True)
class Watched:
    report: Report
    instances: dict[str, str]  # alias -> instance ID
    counts: list[float]  # the metric, one value per hourly run, in order

    def alerts(self) -> list[dict[str, str]]:
        """The hourly look's alerts (the workflow's own failure alert left out)."""
        return [a for a in self.report.alerts if "verified backup" in a["subject"]]


def _emitted(lines: list[str], name: str) -> list[float]:
    values = []
    for line in "".join(lines).splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or "_aws" not in record:
            continue
        for directive in record["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == METRICS_NAMESPACE
            if any(metric["Name"] == name for metric in directive["Metrics"]):
                # Powertools writes each metric's values as a list.
                values.extend(float(value) for value in record[name])
    return values


@pytest.fixture(scope="module")
def watched() -> Watched:
    with Simulation(load(_scenario())) as simulation:
        report = simulation.run()
        return Watched(
            report,
            dict(simulation.aliases.instances),
            _emitted(simulation.handler_output, UNVERIFIED_INSTANCES),
        )


def test_the_backups_end_as_the_scenario_says(watched: Watched) -> None:
    assert watched.report.snapshot("failing1.C").verdict == "failed"
    assert watched.report.snapshot("verified1.C").verdict == "verified"
    assert watched.report.lambda_errors == []


def test_failed_restores_and_no_backup_count_while_verified_new_and_stopped_do_not(
    watched: Watched,
) -> None:
    # Every hour until the 26th: failing and never.
    assert len(watched.counts) == 27
    assert watched.counts[:25] == [2.0] * 25


def test_the_first_alert_names_each_instance_and_why(watched: Watched) -> None:
    ids = watched.instances
    first = watched.alerts()[0]

    assert first["topic"] == "AlertTopic"
    assert first["subject"] == "vss-restore: 2 instance(s) without a verified backup in 26 h"
    message = first["message"]
    assert f"{ids['failing']} (failing): restore failed" in message
    assert "VSS_E_VOLUME_IN_USE" in message
    assert f"{ids['never']} (never): never backed up" in message
    assert "last verified: never" in message
    assert f"stopped (the backup cannot run on them): {ids['parked']} (parked)" in message
    assert f"less than 26 h ago: {ids['new']} (new)" in message
    for quiet in ("verified", "untagged", "helper"):
        assert ids[quiet] not in message


def test_an_unchanged_set_is_not_announced_again_each_hour(watched: Watched) -> None:
    # Hour 1: failing and never; hour 26: new joins; hour 27: verified's verification expires.
    assert [a["subject"] for a in watched.alerts()] == [
        "vss-restore: 2 instance(s) without a verified backup in 26 h",
        "vss-restore: 3 instance(s) without a verified backup in 26 h",
        "vss-restore: 4 instance(s) without a verified backup in 26 h",
    ]


def test_a_new_instance_counts_once_26_hours_have_passed(watched: Watched) -> None:
    ids = watched.instances
    assert watched.counts[25] == 3.0
    assert f"{ids['new']} (new): never backed up" in watched.alerts()[1]["message"]


def test_a_verification_older_than_26_hours_counts(watched: Watched) -> None:
    ids = watched.instances
    assert watched.counts[26] == 4.0
    message = watched.alerts()[2]["message"]
    assert f"{ids['verified']} (verified): no backup in the last 26 h" in message
    assert "last verified: 2026-11-25T00:" in message
