"""One simulator run, and what the bench reads of it besides the simulator's report."""

import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
from moto.dynamodb.models import DynamoDBBackend

from operator_cli import changed
from simulator.report import Report
from simulator.runner import Simulation
from simulator.scenario import load
from vss_restore import tags

STATE_ENTERED = "StateEntered"


@dataclass(frozen=True)
class Entered:
    """A state entered, seconds after the run's start on the virtual clock."""

    state: str
    at: float


@dataclass
class ExecutionTrace:
    name: str
    started_by: str
    status: str
    started_at: float
    ended_at: float
    entered: list[Entered]

    @property
    def transitions(self) -> int:
        return len(self.entered)

    def first(self, state: str) -> float | None:
        return next((e.at for e in self.entered if e.state == state), None)

    def last(self, state: str) -> float | None:
        return next((e.at for e in reversed(self.entered) if e.state == state), None)


@dataclass(frozen=True)
class Attachment:
    """A volume the workflow attached: from the AttachVolume call to the end of the detach."""

    instance: str  # alias
    volume_id: str
    attached_at: float
    detached_at: float | None


@dataclass(frozen=True)
class TemporaryVolume:
    """A volume the workflow made from a snapshot: its size and its life (what gp3 bills)."""

    volume_id: str
    gib: float
    created_at: float
    deleted_at: float | None


@dataclass(frozen=True)
class LaunchedHelper:
    """A helper the fleet launched (HelperMode=fleet), as EC2 bills it: per second, one
    minute at least, from launch to termination (simulator/helpers.py)."""

    instance_id: str
    launched_at: float
    terminated_at: float | None
    billed_seconds: float


@dataclass
class Run:
    report: Report
    executions: list[ExecutionTrace]
    attachments: list[Attachment]
    invocations: Counter[str]  # by function logical ID
    # Each invocation's function and duration on the virtual clock, in-handler waits included.
    invocation_seconds: list[tuple[str, float]]
    real_seconds: float
    scenario: Mapping[str, Any] = field(repr=False)
    # The consistent snapshots' changed data, per instance (operator_cli/changed.py).
    consistent_changes: list[changed.InstanceChanges] = field(default_factory=list)
    temporary_volumes: list[TemporaryVolume] = field(default_factory=list)
    launched_helpers: list[LaunchedHelper] = field(default_factory=list)
    # Every AWS call the stack's principals made, judged by IAM: by action ("ec2:...").
    api_calls: Counter[str] = field(default_factory=Counter)
    # The largest item any write left in a DynamoDB table (bytes, as DynamoDB sizes it).
    largest_item_bytes: int = 0
    # Each invocation whose handler raised: (function logical ID, error name, message).
    errors: list[tuple[str, str, str]] = field(default_factory=list)

    def restores(self) -> list[ExecutionTrace]:
        """Executions that created a volume: the restores (not the skips of the workflow's
        own consistent snapshots)."""
        return [e for e in self.executions if e.first("Create the volume") is not None]

    def transitions_by_state(self) -> Counter[str]:
        return Counter(entered.state for e in self.executions for entered in e.entered)


def run(scenario: Mapping[str, Any]) -> Run:
    """Run the scenario in the simulator and keep what the measurements read."""
    began = time.monotonic()
    with _item_sizes() as largest, Simulation(load(dict(scenario))) as simulation:
        report = simulation.run()
        start = simulation.clock.start
        executions = _traces(simulation, start)
        attachments = _attachments(simulation, start)
        invocations = Counter(i.function for i in simulation.functions.invocations)
        seconds = [(i.function, i.seconds) for i in simulation.functions.invocations]
        measured = _consistent_changes(simulation)
        volumes = _temporary_volumes(simulation, start)
        launched = [
            LaunchedHelper(
                h.instance_id,
                _offset(h.launched_at, start),
                _offset(h.terminated_at, start) if h.terminated_at else None,
                h.billed_seconds(simulation.clock.now()),
            )
            for h in simulation.fleet.launched.values()
        ]
        calls = _api_calls(simulation)
        errors = [
            (i.function, i.error, i.message) for i in simulation.functions.invocations if i.error
        ]
    return Run(
        report,
        executions,
        attachments,
        invocations,
        seconds,
        time.monotonic() - began,
        scenario,
        measured,
        volumes,
        launched,
        calls,
        largest[0],
        errors,
    )


@contextmanager
def _item_sizes() -> Iterator[list[int]]:
    """The size of every item a PutItem or UpdateItem leaves (moto's Item.size(), the sum of
    attribute names and values as DynamoDB counts them toward its 400 KB limit)."""
    largest = [0]
    originals = {name: getattr(DynamoDBBackend, name) for name in ("put_item", "update_item")}

    def sizing(original: Any) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            item = original(*args, **kwargs)
            if item is not None:
                largest[0] = max(largest[0], int(item.size()))
            return item

        return write

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, sizing(original))
    try:
        yield largest
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)


# The instances' own backup (the estate's ready-made snapshots are its calls): not the
# workflow's.
BACKUP_PRINCIPAL = "BackupInstancePolicy"


def _api_calls(simulation: Simulation) -> Counter[str]:
    """Each of the stack's calls once (the backup's left out): a call IAM judges as several
    requests (CreateVolume's tags at birth, the KMS grant EC2 asks for) counts under its own
    operation only."""
    if simulation.authorizer is None:
        return Counter()
    return Counter(
        c.action
        for c in simulation.authorizer.calls
        if c.principal != BACKUP_PRINCIPAL
        and (not c.operation or c.action.partition(":")[2] == c.operation)
    )


def _temporary_volumes(simulation: Simulation, start: datetime) -> list[TemporaryVolume]:
    world = simulation.world
    found = []
    for volume_id in world.volume_sources:
        created = world.volumes[volume_id].started_at
        source = world.snapshot_contents.get(world.volume_sources[volume_id])
        if created is None or source is None:
            continue
        deleted = world.volumes_deleted.get(volume_id)
        found.append(
            TemporaryVolume(
                volume_id,
                source.size / 1024**3,
                _offset(created, start),
                _offset(deleted, start) if deleted else None,
            )
        )
    return found


def _consistent_changes(simulation: Simulation) -> list[changed.InstanceChanges]:
    """Each consistent snapshot's changed data against its source, measured as
    `vss-restore report --storage` does (ListChangedBlocks on the simulator's block model)."""
    region = simulation.world.region
    ec2: Any = boto3.client("ec2", region_name=region)
    with simulation.faults.suspended():
        consistent = [
            dict(s)
            for page in ec2.get_paginator("describe_snapshots").paginate(
                OwnerIds=["self"],
                Filters=[{"Name": f"tag:{tags.RESOURCE}", "Values": [tags.CONSISTENT_SNAPSHOT]}],
            )
            for s in page["Snapshots"]
        ]
        return changed.measure(boto3.client("ebs", region_name=region), [], consistent)


TASK_TIMED_OUT = "TaskTimedOut"
TASK_SCHEDULED = "TaskScheduled"
RETRIED = " (timed out, retried)"
RETRIED_AFTER_ERROR = " (failed, retried)"


def _base(state: str) -> str:
    return state.removesuffix(RETRIED).removesuffix(RETRIED_AFTER_ERROR)


def _offset(moment: datetime, start: datetime) -> float:
    return (moment - start).total_seconds()


def _traces(simulation: Simulation, start: datetime) -> list[ExecutionTrace]:
    client = simulation.sfn_client()
    traces = []
    with simulation.faults.suspended():
        for execution in simulation.executions:
            described = client.describe_execution(executionArn=execution.arn)
            entered: list[Entered] = []
            token: str | None = None
            # Step Functions bills each Retry of a task as a transition: a task scheduled
            # again after its timeout or its error, named after the task.
            scheduled = False
            suffix = RETRIED_AFTER_ERROR
            while True:
                page = client.get_execution_history(
                    executionArn=execution.arn,
                    maxResults=1000,
                    **({"nextToken": token} if token else {}),
                )
                for event in page["events"]:
                    kind = str(event["type"])
                    if kind.endswith(STATE_ENTERED):
                        details = event.get("stateEnteredEventDetails") or {}
                        entered.append(
                            Entered(
                                str(details.get("name", "?")), _offset(event["timestamp"], start)
                            )
                        )
                        scheduled = False
                    elif kind == TASK_TIMED_OUT:
                        suffix = RETRIED
                    elif kind == TASK_SCHEDULED and scheduled and entered:
                        state = _base(entered[-1].state) + suffix
                        entered.append(Entered(state, _offset(event["timestamp"], start)))
                        suffix = RETRIED_AFTER_ERROR
                    elif kind == TASK_SCHEDULED:
                        scheduled = True
                token = page.get("nextToken")
                if not token:
                    break
            stopped = described.get("stopDate") or simulation.clock.now()
            traces.append(
                ExecutionTrace(
                    name=execution.name,
                    started_by=execution.started_by,
                    status=str(described["status"]),
                    started_at=_offset(described["startDate"], start),
                    ended_at=_offset(stopped, start),
                    entered=entered,
                )
            )
    return traces


def _attachments(simulation: Simulation, start: datetime) -> list[Attachment]:
    by_id = {instance_id: alias for alias, instance_id in simulation.aliases.instances.items()}
    # The workflow's volumes are the ones made from a snapshot; the instances' own are not.
    made = set(simulation.world.volume_sources)
    return [
        Attachment(
            by_id.get(record.instance_id, record.instance_id),
            record.volume_id,
            _offset(record.requested_at or record.attached_at, start),
            _offset(record.detached_at, start) if record.detached_at else None,
        )
        for record in simulation.world.attachments
        if record.volume_id in made
    ]
