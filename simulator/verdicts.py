"""Read the run as an operator would: snapshot tags, execution output, volumes left, alerts,
attachments over time, the ledger."""

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from moto.sns.models import sns_backends

from simulator.report import SnapshotResult, readable_cause
from vss_restore import tags

if TYPE_CHECKING:
    from simulator.runner import Simulation

VERDICTS = ("verified", "failed", "skipped")


def _outcomes(value: Any, found: dict[str, dict[str, Any]]) -> None:
    """Every {"snapshot_id": ..., "status": ...} the executions reported, last one wins."""
    if isinstance(value, dict):
        if isinstance(value.get("snapshot_id"), str) and value.get("status") in VERDICTS:
            found[value["snapshot_id"]] = value
        for item in value.values():
            _outcomes(item, found)
    elif isinstance(value, list):
        for item in value:
            _outcomes(item, found)


def _json_in(text: str) -> Any:
    """A failed execution's cause may carry the verdicts as JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def read_verdicts(simulation: "Simulation") -> tuple[list[SnapshotResult], list[dict[str, Any]]]:
    world, aliases = simulation.world, simulation.aliases
    ec2 = simulation.ec2_client()
    snapshots = {s["SnapshotId"]: s for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    reported: dict[str, dict[str, Any]] = {}
    errors: dict[str, tuple[str | None, str | None]] = {}
    for execution in simulation.executions:
        if execution.result is None:
            continue
        _outcomes(execution.result.output, reported)
        _outcomes(_json_in(readable_cause(execution.result.cause)), reported)
        errors[execution.arn] = (execution.result.error, execution.result.cause)
        errors[execution.name] = errors[execution.arn]

    reverted: dict[str, list[str]] = {}
    for invocation in simulation.agents.log:
        if invocation.run is None or invocation.run.action != "Revert" or not invocation.finished:
            continue
        source = world.volume_sources.get(invocation.run.volume_id)
        if source is not None:
            reverted.setdefault(source, []).extend(invocation.run.finish().get("reverted", []))

    declared = set(simulation.scenario.snapshots)
    results = []
    for alias, snapshot_id in aliases.snapshots.items():
        results.append(
            _result(
                alias,
                snapshot_id,
                snapshots.get(snapshot_id, {}),
                reported,
                errors,
                reverted,
                simulation,
                "declared" if alias in declared else "backup",
            )
        )
    made = [
        s
        for s in snapshots.values()
        if tags.as_dict(s.get("Tags")).get(tags.RESOURCE) == tags.CONSISTENT_SNAPSHOT
    ]
    seen: dict[str, int] = {}
    for snapshot in sorted(made, key=lambda s: s["StartTime"]):
        source = tags.as_dict(snapshot.get("Tags")).get(tags.SOURCE_SNAPSHOT, "")
        base = (aliases.snapshot_alias(source) or source) + ".consistent"
        seen[base] = seen.get(base, 0) + 1
        alias = base if seen[base] == 1 else f"{base}#{seen[base]}"
        results.append(
            _result(
                alias,
                snapshot["SnapshotId"],
                snapshot,
                reported,
                errors,
                reverted,
                simulation,
                "workflow",
            )
        )

    own = set(aliases.volumes.values())
    volumes_left = [
        {
            "volume_id": v["VolumeId"],
            "state": v["State"],
            "attached_to": [a["InstanceId"] for a in v.get("Attachments", [])],
            "source_snapshot": tags.as_dict(v.get("Tags")).get(tags.SOURCE_SNAPSHOT, ""),
        }
        for v in ec2.describe_volumes()["Volumes"]
        if v["VolumeId"] not in own
    ]
    return results, volumes_left


def _result(
    alias: str,
    snapshot_id: str,
    snapshot: dict[str, Any],
    reported: dict[str, dict[str, Any]],
    errors: dict[str, tuple[str | None, str | None]],
    reverted: dict[str, list[str]],
    simulation: "Simulation",
    origin: str,
) -> SnapshotResult:
    world = simulation.world
    snapshot_tags = tags.as_dict(snapshot.get("Tags"))
    outcome = reported.get(snapshot_id, {})
    # The tags are what stays; an execution's output or error says what it did otherwise.
    status = snapshot_tags.get(tags.STATUS) or str(outcome.get("status") or "")
    verdict = status if status in (tags.VERIFIED, tags.FAILED) else "skipped"
    reason = snapshot_tags.get(tags.REASON) or str(outcome.get("reason") or "")
    if verdict == "skipped" and not reason and not outcome:
        reason = "no execution reported on it"
    consistent = snapshot_tags.get(tags.RESULT_SNAPSHOT) or str(
        outcome.get("consistent_snapshot") or ""
    )
    consistent = consistent if consistent.startswith("snap-") else ""
    # A verify-only snapshot is its own consistent snapshot: what was checked was its clone.
    content = world.snapshot_contents.get(consistent) if consistent else None
    source_content = world.snapshot_contents.get(snapshot_id)
    error = None
    if verdict == "failed":
        execution = snapshot_tags.get(tags.EXECUTION, "")
        failed_with = errors.get(execution) or errors.get(execution.rsplit(":", 1)[-1])
        error = f"{failed_with[0]}: {failed_with[1]}" if failed_with and failed_with[0] else reason
    return SnapshotResult(
        alias=alias,
        snapshot_id=snapshot_id,
        verdict=verdict,
        reason=reason,
        consistent_snapshot=consistent or None,
        shadow_copies_reverted=list(reverted.get(snapshot_id, [])),
        content_consistent=bool(content is not None and content.consistent),
        error=error,
        identity_preserved=(
            content.identity == source_content.identity
            if content is not None and source_content is not None
            else None
        ),
        origin=origin,
        rule=snapshot_tags.get(tags.RULE, ""),
        volumes=snapshot_tags.get(tags.VOLUMES, ""),
        drives_unreverted=[
            p.drive_letter
            for p in (content.partitions if content is not None else [])
            if p.holds_data and not p.consistent and not p.reverted_to
        ],
    )


def read_alerts(simulation: "Simulation") -> list[dict[str, str]]:
    """What the stack's SNS topics sent, topic by topic, in the order sent."""
    backend = sns_backends[simulation.world.account_id][simulation.world.region]
    alerts = []
    for logical_id, arn in simulation.stack.topics.items():
        topic = backend.topics.get(arn)
        for _, message, subject, *_ in topic.sent_notifications if topic else []:
            alerts.append({"topic": logical_id, "subject": subject or "", "message": message})
    return alerts


def peak_attached(simulation: "Simulation") -> dict[str, int]:
    """The most volumes attached at once (from the attach request to the end of the detach),
    per instance: every helper, and any other instance the workflow attached volumes to."""
    aliases = simulation.aliases
    alias_of = {instance_id: alias for alias, instance_id in aliases.instances.items()}
    own = set(aliases.volumes.values()) | simulation.fleet.root_volumes
    changes: dict[str, list[tuple[datetime, int]]] = {
        aliases.instances[alias]: []
        for alias, spec in simulation.scenario.instances.items()
        if spec.helper and alias in aliases.instances
    }
    for record in simulation.world.attachments:
        if record.volume_id in own:
            continue
        moments = changes.setdefault(record.instance_id, [])
        moments.append((record.requested_at or record.attached_at, 1))
        if record.detached_at is not None:
            moments.append((record.detached_at, -1))
    peaks = {}
    for instance_id, moments in changes.items():
        attached = peak = 0
        # A detach that ends as another attach starts frees the slot first.
        for _, change in sorted(moments):
            attached += change
            peak = max(peak, attached)
        peaks[alias_of.get(instance_id, instance_id)] = peak
    return peaks


Ledger = tuple[bool, dict[str, list[str]], list[dict[str, str]]]


def read_ledger(simulation: "Simulation") -> Ledger:
    """The Ledger table: helper turns still held or waited for (by helper alias) and claims
    still running."""
    table = simulation.stack.tables.get("Ledger")
    if table is None:
        return False, {}, []
    aliases = simulation.aliases
    alias_of = {instance_id: alias for alias, instance_id in aliases.instances.items()}
    client: Any = boto3.client("dynamodb", region_name=simulation.world.region)
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(page["Items"])
    held: dict[str, list[str]] = {}
    running = []
    for item in sorted(items, key=lambda i: str(i.get("pk", {}).get("S", ""))):
        key = str(item.get("pk", {}).get("S", ""))
        if key.startswith("helper#"):
            holders = sorted((item.get("holders") or {}).get("M", {}))
            if holders:
                instance_id = key.removeprefix("helper#")
                held[alias_of.get(instance_id, instance_id)] = holders
        elif key.startswith("waiting#"):
            # A waiter left in a helper's line once every execution has ended is a leak too:
            # the line's count (the `line` index) would see it until MaxWaitHours.
            instance_id, _, holder = key.removeprefix("waiting#").partition("#")
            held.setdefault(alias_of.get(instance_id, instance_id), []).append(f"in line: {holder}")
        elif key.startswith("snapshot#") and item.get("status", {}).get("S") == "running":
            snapshot_id = key.removeprefix("snapshot#")
            running.append(
                {
                    "snapshot": aliases.snapshot_alias(snapshot_id) or snapshot_id,
                    "execution": str(item.get("execution", {}).get("S", "")),
                }
            )
    return True, held, running
