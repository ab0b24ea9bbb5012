"""Measurements 1 and 2: one restore's overhead over the AWS latencies, and its cost."""

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import model, scenarios
from bench.runs import ExecutionTrace, Run, run
from operator_cli.storage import PRICE_PER_GB_MONTH
from simulator.template import load_template

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
RESTORE_FUNCTION = "CreateVolumeFunction"  # any workflow function: they share the Globals

# Each wait of the workflow: the state that starts the operation, the state entered once the
# workflow has seen it done, and the operations of the model it covers.
PHASES: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("volume available", "Create the volume", "Attach the volume", ("volume available",)),
    ("attach", "Attach the volume", "Inspect the disk", ("attach",)),
    (
        "inspect",
        "Inspect the disk",
        "Revert or only check?",
        ("disk arrival / command delivery", "inspect"),
    ),
    ("revert", "Revert the shadow copies", "Check after the revert?", ("revert",)),
    ("check", "Check the disk", "Detach the volume", ("check",)),
    ("detach", "Detach the volume", "Give back the helper", ("detach",)),
    (
        "snapshot completed",
        "Snapshot the consistent volume",
        "Keep the volume?",
        ("snapshot completed",),
    ),
]


@dataclass(frozen=True)
class Phase:
    name: str
    measured: float
    modelled: float
    transitions: int

    @property
    def excess(self) -> float:
        return self.measured - self.modelled


def restore_run(revert_seconds: float) -> Run:
    name = f"bench-restore-{revert_seconds / 60:g}min"
    return run(scenarios.single_restore(name, revert_seconds))


def the_restore(result: Run) -> ExecutionTrace:
    restores = result.restores()
    if len(restores) != 1:
        raise RuntimeError(f"expected one restore, the run made {len(restores)}")
    return restores[0]


def _index(trace: ExecutionTrace, state: str, after: int = 0) -> int:
    for i in range(after, len(trace.entered)):
        if trace.entered[i].state == state:
            return i
    raise RuntimeError(f"{trace.name} never entered {state!r} (was the state renamed?)")


def phases(trace: ExecutionTrace, timing: Mapping[str, float]) -> list[Phase]:
    """Each wait as the workflow lived it: from the state that starts the operation to the
    state after the wait, against the model's latency for it."""
    ops = dict(model.operations(timing))
    found = []
    for name, begin, end, covers in PHASES:
        i = _index(trace, begin)
        j = _index(trace, end, i)
        found.append(
            Phase(
                name,
                trace.entered[j].at - trace.entered[i].at,
                sum(ops[op] for op in covers),
                j - i,
            )
        )
    return found


def overhead(result: Run, revert_seconds: float) -> dict[str, Any]:
    """Workflow time beyond the modelled AWS latencies, and the waiter baseline's."""
    timing = model.timing(revert_seconds=revert_seconds)
    trace = the_restore(result)
    workflow = trace.ended_at - trace.started_at
    aws = model.total(model.operations(timing))
    waiter = model.total(model.waiter_operations(timing))
    found = phases(trace, timing)
    in_waits = sum(p.measured for p in found)
    return {
        "revert_seconds": revert_seconds,
        "workflow_seconds": round(workflow, 1),
        "aws_seconds": aws,
        "overhead_seconds": round(workflow - aws, 1),
        "overhead_share": round((workflow - aws) / workflow, 4),
        "waiter_seconds": waiter,
        "waiter_overhead_seconds": waiter - aws,
        "waiter_ratio": round(workflow / waiter, 3),
        "operations": [{"operation": n, "seconds": s} for n, s in model.operations(timing)],
        "waiter_operations": [
            {"operation": n, "seconds": s} for n, s in model.waiter_operations(timing)
        ],
        "phases": [
            {
                "wait": p.name,
                "measured_seconds": round(p.measured, 1),
                "modelled_seconds": p.modelled,
                "excess_seconds": round(p.excess, 1),
                "transitions": p.transitions,
            }
            for p in found
        ],
        # Lambda steps outside the waits: read, resolve, claim, prepare, take and give back
        # the turn, plan, delete, record, report.
        "outside_waits_seconds": round(workflow - in_waits, 1),
    }


def lambda_memory_gb() -> float:
    """The workflow functions' memory, from the template's Globals (MB)."""
    spec = load_template(TEMPLATE).functions[RESTORE_FUNCTION]
    return spec.memory / 1024


def billed(seconds: float) -> float:
    """What Lambda bills for an invocation of that duration: rounded up to the millisecond
    (rounded to the microsecond first, the virtual clock's resolution)."""
    return math.ceil(round(seconds * 1000, 3)) / 1000


def cost(result: Run, revert_seconds: float, volume_gib: int) -> dict[str, Any]:
    """What one restore costs: every execution the run had (the restore, and the short one
    its own consistent snapshot's event starts), every Lambda invocation for its duration on
    the virtual clock (the waits inside handlers included) and the temporary volume's life."""
    timing = model.timing(revert_seconds=revert_seconds)
    prices = model.PRICES
    trace = the_restore(result)
    transitions = sum(e.transitions for e in result.executions)
    invocations = sum(result.invocations.values())
    memory_gb = lambda_memory_gb()
    durations = [seconds for _, seconds in result.invocation_seconds]
    billed_seconds = sum(billed(s) for s in durations)
    gb_seconds = billed_seconds * memory_gb
    seconds_by_function: Counter[str] = Counter()
    for function, seconds in result.invocation_seconds:
        seconds_by_function[function] += seconds
    created = trace.first("Create the volume")
    deleted = trace.first("Record the verdict")  # entered once DeleteVolume has returned
    if created is None or deleted is None:
        raise RuntimeError(f"{trace.name} did not create and delete its volume")
    volume_hours = (deleted - created) / 3600
    dollars = {
        "transitions": transitions * prices.per_transition,
        "lambda_gb_seconds": gb_seconds * prices.per_gb_second,
        "lambda_requests": invocations * prices.per_request,
        "volume": volume_gib * volume_hours / prices.hours_per_month * prices.per_gb_month,
    }
    # What the consistent snapshot adds to the bill each month it is kept: its changed data
    # against the source (ListChangedBlocks), at the EBS snapshot Standard price.
    stored = result.consistent_changes
    changed_gib = sum(r.consistent_gib for r in stored)
    unmeasured = [str(u) for r in stored for u in r.unmeasured]
    minutes = (trace.ended_at - trace.started_at) / 60
    orchestration = dollars["transitions"] + dollars["lambda_gb_seconds"]
    orchestration += dollars["lambda_requests"]
    by_state = result.transitions_by_state()
    return {
        "revert_seconds": revert_seconds,
        "restore_minutes": round(minutes, 2),
        "transitions": transitions,
        "transitions_restore": trace.transitions,
        "transitions_other_executions": transitions - trace.transitions,
        "lambda_invocations": invocations,
        "lambda_seconds": round(sum(durations), 3),
        "lambda_billed_seconds": round(billed_seconds, 3),
        "lambda_seconds_by_function": {
            function: round(seconds, 3) for function, seconds in seconds_by_function.most_common()
        },
        "lambda_memory_gb": memory_gb,
        "lambda_gb_seconds": round(gb_seconds, 3),
        "volume_gib": volume_gib,
        "volume_hours": round(volume_hours, 4),
        "consistent_snapshot_changed_gib": round(changed_gib, 3),
        "consistent_snapshot_dollars_per_month": round(changed_gib * PRICE_PER_GB_MONTH, 4),
        "consistent_snapshot_unmeasured": unmeasured,
        "dollars": {k: round(v, 8) for k, v in dollars.items()},
        "dollars_total": round(sum(dollars.values()), 8),
        "orchestration_dollars": round(orchestration, 8),
        "orchestration_dollars_per_minute": round(orchestration / minutes, 9),
        "transitions_by_wait": {p.name: p.transitions for p in phases(trace, timing)},
        "transitions_by_state": dict(by_state.most_common()),
    }
