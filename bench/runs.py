"""One simulator run, and what the bench reads of it besides the simulator's report."""

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3

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

    def restores(self) -> list[ExecutionTrace]:
        """Executions that created a volume: the restores (not the skips of the workflow's
        own consistent snapshots)."""
        return [e for e in self.executions if e.first("Create the volume") is not None]

    def transitions_by_state(self) -> Counter[str]:
        return Counter(entered.state for e in self.executions for entered in e.entered)


def run(scenario: Mapping[str, Any]) -> Run:
    """Run the scenario in the simulator and keep what the measurements read."""
    began = time.monotonic()
    with Simulation(load(dict(scenario))) as simulation:
        report = simulation.run()
        start = simulation.clock.start
        executions = _traces(simulation, start)
        attachments = _attachments(simulation, start)
        invocations = Counter(i.function for i in simulation.functions.invocations)
        seconds = [(i.function, i.seconds) for i in simulation.functions.invocations]
        measured = _consistent_changes(simulation)
    return Run(
        report,
        executions,
        attachments,
        invocations,
        seconds,
        time.monotonic() - began,
        scenario,
        measured,
    )


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
RETRIED = " (timed out, retried)"


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
            while True:
                page = client.get_execution_history(
                    executionArn=execution.arn,
                    maxResults=1000,
                    **({"nextToken": token} if token else {}),
                )
                for event in page["events"]:
                    if str(event["type"]).endswith(STATE_ENTERED):
                        details = event.get("stateEnteredEventDetails") or {}
                        entered.append(
                            Entered(
                                str(details.get("name", "?")), _offset(event["timestamp"], start)
                            )
                        )
                    elif event["type"] == TASK_TIMED_OUT and entered:
                        # Step Functions bills the Retry that follows as a transition;
                        # named after the task, however many times it timed out before.
                        state = entered[-1].state.removesuffix(RETRIED) + RETRIED
                        entered.append(Entered(state, _offset(event["timestamp"], start)))
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
