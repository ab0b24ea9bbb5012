"""A case run through the simulator: the base scenario changed, and what an operator sees."""

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto.ec2.models import ec2_backends

from simulator import Report, Simulation, load
from simulator.report import ExecutionResult, readable_cause
from tests.faults.cases import Case
from vss_restore import tags

BASE = Path(__file__).parent / "scenarios" / "base.json"
SNAPSHOT = "snap"  # the base scenario's snapshot
MISSING_KEY = "arn:aws:kms:{region}:{account}:key/00000000-0000-4000-8000-000000000000"


def scenario_for(case: Case) -> dict[str, Any]:
    """The base scenario with the case's change: mappings merged, lists and values replaced."""
    scenario = _merged(json.loads(BASE.read_text()), case.change)
    scenario["name"] = f"faults-{case.id}"
    scenario["expect"] = {"locks_free": True}  # each case states its own outcome
    return scenario


def _merged(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass(frozen=True)
class Outcome:
    report: Report
    snapshot_ids: dict[str, str]  # the scenario's own snapshots: alias -> ID
    source_tags: dict[str, dict[str, str]]  # alias -> its tags after the run
    volumes_created: list[str]  # every volume the workflow created, deleted or not
    handler_errors: list[tuple[str, str]]  # (function, error) of every failed invocation

    @property
    def first(self) -> ExecutionResult:
        return self.report.executions[0]

    def verdicts(self, execution: ExecutionResult) -> list[dict[str, Any]]:
        """The verdicts an execution reported: its output, or the cause it failed with."""
        reported = execution.output or _json(readable_cause(execution.cause)) or {}
        return list(reported.get("verdicts", [])) if isinstance(reported, dict) else []

    def source_verdicts(self) -> list[dict[str, Any]]:
        """Every verdict on the scenario's own snapshots, from every execution."""
        ids = set(self.snapshot_ids.values())
        return [
            v
            for e in self.report.executions
            for v in self.verdicts(e)
            if v.get("snapshot_id") in ids
        ]

    def alerts_text(self) -> str:
        return "\n".join(f"{a['subject']}\n{a['message']}" for a in self.report.alerts)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def run(case: Case) -> Outcome:
    with Simulation(load(scenario_for(case))) as simulation:
        if case.key:
            _encrypt(simulation, SNAPSHOT, case.key)
        report = simulation.run()
        ids = {a: simulation.aliases.snapshots[a] for a in simulation.scenario.snapshots}
        own = set(simulation.aliases.volumes.values())
        with simulation.faults.suspended():
            found = simulation.ec2_client().describe_snapshots(SnapshotIds=list(ids.values()))
        by_id = {s["SnapshotId"]: tags.as_dict(s.get("Tags")) for s in found["Snapshots"]}
        return Outcome(
            report=report,
            snapshot_ids=ids,
            source_tags={alias: by_id[i] for alias, i in ids.items()},
            volumes_created=[v for v in simulation.world.volume_sources if v not in own],
            handler_errors=[
                (i.function, i.error) for i in simulation.functions.invocations if i.error
            ],
        )


def _encrypt(simulation: Simulation, alias: str, key_state: str) -> None:
    """Encrypt a ready-made snapshot with a KMS key in that state ("missing": none we see).

    The simulator has no encrypted snapshots; moto's snapshot is given a key directly.
    """
    region, account = simulation.world.region, simulation.world.account_id
    if key_state == "missing":
        key_arn = MISSING_KEY.format(region=region, account=account)
    else:
        with simulation.faults.suspended():
            kms = boto3.client("kms", region_name=region)
            key = kms.create_key(Description="backups")["KeyMetadata"]
            key_arn = key["Arn"]
            if key_state == "Disabled":
                kms.disable_key(KeyId=key["KeyId"])
            elif key_state == "PendingDeletion":
                kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    snapshot = ec2_backends[account][region].snapshots[simulation.aliases.snapshots[alias]]
    snapshot.encrypted, snapshot.kms_key_id = True, key_arn
