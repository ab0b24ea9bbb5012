"""The nightly backup waits out a throttled CreateSnapshot, as documents/backup.ps1's
New-SnapshotWithRetry does: on the virtual clock, with the script's own settings."""

import json
from pathlib import Path
from typing import Any

import boto3

from simulator import Simulation, backup_retry, load
from tests.simulator.runs import failures

SCENARIO = Path(__file__).parents[2] / "simulator" / "scenarios" / "backup-throttled.json"


def _backup_log(simulation: Simulation) -> list[str]:
    """What the backup's CloudWatch log group holds (the window's CloudWatchOutputConfig)."""
    logs: Any = boto3.client("logs", region_name=simulation.scenario.region)
    group = simulation.estate.backup_log_group  # type: ignore[union-attr]
    messages = []
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])
        messages += [e["message"] for e in events["events"]]
    return messages


def test_a_throttled_backup_snapshot_is_retried_and_every_drive_verifies() -> None:
    settings = backup_retry.settings()
    with Simulation(load(SCENARIO)) as simulation:
        report = simulation.run()
        log = _backup_log(simulation)

    assert report.ok, failures(report)
    assert report.snapshot("night1.C").verdict == "verified"
    assert report.snapshot("night1.D").verdict == "verified"
    # Every refusal the scenario aims at the backup was met: 7 for C:, 1 for D:.
    assert report.faults_hit.count("api ec2:createsnapshot") == 8
    (backup,) = report.backups
    assert backup["ok"] is True
    assert [(r["volume"], r["code"], r["retry"]) for r in backup["retries"]] == [
        ("C", "RequestLimitExceeded", 1),
        ("D", "SnapshotCreationPerVolumeRateExceeded", 1),
    ]
    # A first retry waits rand(0, base): full jitter under the script's own base.
    assert all(0 <= r["wait_seconds"] < settings.base_seconds for r in backup["retries"])
    (message,) = log
    assert "C: RequestLimitExceeded, retry 1 in" in message
    assert "D: SnapshotCreationPerVolumeRateExceeded, retry 1 in" in message


def test_a_backup_throttled_past_its_budget_reports_the_drives_not_snapshotted() -> None:
    settings = backup_retry.settings()
    scenario = json.loads(SCENARIO.read_text(encoding="utf-8"))
    scenario["name"] = "backup-throttled-all-night"
    scenario["faults"] = [
        {
            "action": "ec2:CreateSnapshot",
            "error": "RequestLimitExceeded",
            "times": None,
            "function": "BackupDocument",
        }
    ]
    scenario["expect"] = {"executions": {"SUCCEEDED": 0, "FAILED": 0}, "backup_problems": 2}
    with Simulation(load(scenario)) as simulation:
        report = simulation.run()
        ids = dict(simulation.aliases.snapshots)

    assert report.ok, failures(report)
    assert ids == {}  # no snapshot taken, so no restore started
    (backup,) = report.backups
    assert backup["ok"] is False
    assert [p.split(":")[0] for p in backup["problems"]] == ["C", "D"]
    assert "RequestLimitExceeded after" in backup["problems"][0]
    retries = backup["retries"]
    # Backoff: each wait under min(cap, base * 2^n); all of them inside the one budget.
    for r in retries:
        assert r["wait_seconds"] < settings.ceiling(r["retry"] - 1)
    assert sum(r["wait_seconds"] for r in retries) <= settings.budget_seconds
    assert max(r["retry"] for r in retries if r["volume"] == "C") >= 10
    # The SDK's own backoff takes the rest of the budget: the waits are most of it.
    assert sum(r["wait_seconds"] for r in retries) > settings.budget_seconds / 2
