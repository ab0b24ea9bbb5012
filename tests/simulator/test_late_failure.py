"""Issue #16, item 4: a restore that fails while its consistent snapshot is pending deletes it
at once; EBS carries the deletion out once the snapshot completes, and the completion event
that follows is skipped, without a failure or an alert (scenario late-failure-pending-snapshot)."""

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from simulator import Report, Simulation, load
from simulator.report import ExecutionResult, readable_cause
from tests.simulator.runs import SCENARIOS, failures

PENDING_DELETED = re.compile(
    r"consistent snapshot (snap-[0-9a-f]+) deleted \(takes effect when it completes\)"
)


@dataclass(frozen=True)
class LateFailures:
    report: Report
    sources: dict[str, str]  # alias -> the source snapshot's ID
    completed_at: dict[str, datetime]  # consistent snapshot -> when EBS completed it
    deleted: list[str]  # in the order the deletions took effect
    still_described: dict[str, bool]  # consistent snapshot -> DescribeSnapshots lists it


@pytest.fixture(scope="module")
def run() -> LateFailures:
    with Simulation(load(SCENARIOS / "late-failure-pending-snapshot.json")) as simulation:
        report = simulation.run()
        world = simulation.world
        made = [
            s
            for s in world.snapshots
            if s not in simulation.aliases.snapshots.values() and s in world.snapshot_contents
        ]
        return LateFailures(
            report=report,
            sources=dict(simulation.aliases.snapshots),
            completed_at={s: world.snapshots[s].ready_at for s in made},
            deleted=list(world.snapshots_deleted),
            still_described={s: _described(simulation, s) for s in made},
        )


def _described(simulation: Simulation, snapshot_id: str) -> bool:
    try:
        simulation.ec2_client().describe_snapshots(SnapshotIds=[snapshot_id])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "InvalidSnapshot.NotFound":
            raise
        return False
    return True


def _verdicts(execution: ExecutionResult) -> list[dict[str, Any]]:
    reported = execution.output or json.loads(readable_cause(execution.cause) or "{}")
    return list(reported.get("verdicts", []))


def _started(execution: ExecutionResult) -> datetime:
    return datetime.fromisoformat(execution.started_at.replace("Z", "+00:00"))


def _ended(execution: ExecutionResult) -> datetime:
    return _started(execution) + timedelta(seconds=execution.virtual_seconds)


def _failed_runs(run: LateFailures) -> dict[str, tuple[ExecutionResult, dict[str, Any]]]:
    """Source alias -> its failed execution and verdict."""
    alias_of = {snapshot_id: alias for alias, snapshot_id in run.sources.items()}
    found = {}
    for execution in run.report.executions:
        for verdict in _verdicts(execution):
            alias = alias_of.get(verdict["snapshot_id"])
            if alias and verdict["status"] == "failed":
                found[alias] = (execution, verdict)
    return found


def test_the_run_ends_as_the_scenario_expects(run: LateFailures) -> None:
    assert run.report.ok, failures(run.report)


@pytest.mark.parametrize(
    ("alias", "why"),
    [
        ("night1.D", "AccessDeniedException"),  # the snapshot step, after its CreateSnapshot
        ("night1.C", "WaitTimedOut"),  # pending past the wait's 24 h
    ],
)
def test_a_pending_consistent_snapshot_is_deleted_at_once_and_the_verdict_says_so(
    run: LateFailures, alias: str, why: str
) -> None:
    execution, verdict = _failed_runs(run)[alias]
    assert execution.status == "FAILED"
    assert why in verdict["reason"]
    (pending,) = PENDING_DELETED.findall(verdict["reason"])
    assert verdict["consistent_snapshots_deleted"] == [pending]
    assert verdict["consistent_snapshots_pending"] == [pending]
    # The cleanup asked while it was pending; EBS deleted it once it completed, not before.
    assert _ended(execution) < run.completed_at[pending]
    assert run.deleted.count(pending) == 1
    assert run.still_described[pending] is False


def test_the_deleted_snapshots_completion_event_is_skipped_without_an_alert(
    run: LateFailures,
) -> None:
    failed = {alias: verdict for alias, (_, verdict) in _failed_runs(run).items()}
    deleted = {PENDING_DELETED.findall(v["reason"])[0] for v in failed.values()}
    later = [e for e in run.report.executions if e.status == "SUCCEEDED"]
    skipped = {
        v["snapshot_id"]: v["reason"]
        for e in later
        for v in _verdicts(e)
        if v["status"] == "skipped"
    }
    assert skipped == dict.fromkeys(deleted, "made-by-vss-restore-and-deleted")
    # Each started once its snapshot had completed (and was gone).
    for execution in later:
        (verdict,) = _verdicts(execution)
        assert _started(execution) >= run.completed_at[verdict["snapshot_id"]]
    # One alert per failed restore, naming its source; none for the events that came later.
    subjects = sorted(a["subject"] for a in run.report.alerts)
    assert subjects == sorted(
        f"vss-restore: {run.sources[alias]} failed ({reason})"
        for alias, reason in (("night1.D", "ClientError"), ("night1.C", "WaitTimedOut"))
    )
    assert run.report.lambda_errors == []


def test_nothing_is_left_behind_or_running(run: LateFailures) -> None:
    assert run.report.volumes_left == []
    assert not any(run.still_described.values())
    assert {e.status for e in run.report.executions} == {"FAILED", "SUCCEEDED"}
    assert run.report.locks_held == {}
    assert run.report.claims_running == []
    assert [h["instance_id"] for h in run.report.helpers if h["running"]] == []
