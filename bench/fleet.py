"""Measurement 4: the nightly burst of a fleet, against the helpers' ideal makespan.

The fleet runs as one simulation per helper (the helper, the instances assigned to it round
robin, their snapshots' events at the moments they have in the whole burst), side by side in
processes. Each part names only its helper in HelperInstanceIds. The whole fleet's stack
names all five and each restore takes the least busy as it prepares; with events 0.2 s
apart that splits the burst about as evenly as the round robin does (a burst arriving at one
instant falls back to a hash of the snapshot ID: uneven by a few restores per helper).
Otherwise nothing the simulator models couples two helpers: each helper's turns are an
item of its own in the ledger, no account-wide rate or concurrency limit is simulated, and
the injected throttling keeps its rate in every part. One simulation of all 300 restores
gives the same figures but costs far more real time: the virtual clock looks at every
participant (a thread per execution, Map iteration and task) at every turn.
"""

import itertools
import multiprocessing
import os
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench import model, scenarios
from bench.runs import RETRIED, Run, run

# A queued restore's turn comes by task token; its task times out (and is retried) only
# when it waits longer than the task's TimeoutSeconds.
TURN_WAIT = "Take a turn on the helper" + RETRIED


@dataclass(frozen=True)
class FleetSpec:
    instances: int = 100
    helpers: int = 5
    burst_seconds: float = 60.0
    throttle_every: int | None = 20  # 5%
    concurrency: int = 1


def shard(spec: FleetSpec, helper: int | None) -> dict[str, Any]:
    """The whole fleet's scenario, or (helper given) the part of it one helper serves."""
    whole = scenarios.fleet(
        instances=spec.instances,
        helpers=spec.helpers,
        burst_seconds=spec.burst_seconds,
        throttle_every=None,
        concurrency=spec.concurrency,
    )
    if helper is None:
        part = whole
    else:
        mine = scenarios.helper_alias(helper)
        owners = {
            scenarios.instance_alias(i)
            for i in range(spec.instances)
            if scenarios.assigned_helper(i, spec.helpers) == mine
        }
        snapshots = {
            alias: snapshot
            for alias, snapshot in whole["snapshots"].items()
            if snapshot["volume"].split(".", 1)[0] in owners
        }
        part = {
            **whole,
            "name": f"{whole['name']}-{mine}",
            "parameters": {
                **whole["parameters"],
                "HelperInstanceIds": f"${{instance:{mine}}}",
            },
            "instances": {
                alias: instance
                for alias, instance in whole["instances"].items()
                if alias in owners or alias == mine
            },
            "snapshots": snapshots,
            "steps": [
                step
                for step in whole["steps"]
                if "deliver" not in step or step["deliver"]["snapshot"] in snapshots
            ],
        }
    if spec.throttle_every:
        part["faults"] = scenarios.throttling_faults(len(part["snapshots"]), spec.throttle_every)
    return part


def summarize(result: Run) -> dict[str, Any]:
    """What the fleet measurement needs of one run (picklable, small)."""
    report = result.report
    sources = [s for s in report.snapshots if s.origin != "workflow"]
    helpers = [a for a in result.scenario["instances"] if a.startswith("helper")]
    attachments = {
        helper: sorted(
            (a.attached_at, a.detached_at if a.detached_at is not None else float("inf"))
            for a in result.attachments
            if a.instance == helper
        )
        for helper in helpers
    }
    restores = result.restores()
    return {
        "name": report.scenario,
        "real_seconds": round(result.real_seconds, 1),
        "virtual_seconds": report.virtual_seconds,
        "snapshots": len(sources),
        "verdicts": dict(Counter(s.verdict for s in sources)),
        "peak_attached": {h: report.peak_attached.get(h, 0) for h in helpers},
        "attachments": attachments,
        "restores": len(restores),
        "restore_status": dict(Counter(e.status for e in restores)),
        "all_ended_at": max((e.ended_at for e in result.executions), default=0.0),
        "transitions": sum(e.transitions for e in result.executions),
        "turn_waits": sum(1 for e in result.executions for s in e.entered if s.state == TURN_WAIT),
        "lambda_invocations": report.lambda_invocations,
        "throttled": dict(Counter(report.faults_hit)),
        "locks_held": report.locks_held,
        "claims_running": report.claims_running,
        "volumes_left": len(report.volumes_left),
        "failures": report.failures,
    }


def _run_part(scenario: dict[str, Any]) -> dict[str, Any]:
    return summarize(run(scenario))


def _helper_figures(intervals: Sequence[tuple[float, float]]) -> dict[str, Any]:
    busy = sum(end - start for start, end in intervals)
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(intervals)]
    return {
        "restores": len(intervals),
        "first_attach": round(intervals[0][0], 1) if intervals else None,
        "last_detach": round(intervals[-1][1], 1) if intervals else None,
        "attached_seconds": round(busy, 1),
        "idle_gaps_seconds": round(sum(gaps), 1),
        "mean_gap_seconds": round(statistics.mean(gaps), 1) if gaps else 0.0,
        "longest_gap_seconds": round(max(gaps), 1) if gaps else 0.0,
    }


def measure(spec: FleetSpec = FleetSpec(), *, shards: bool = True) -> dict[str, Any]:
    parts = [shard(spec, h) for h in range(1, spec.helpers + 1)] if shards else [shard(spec, None)]
    if len(parts) > 1:
        workers = min(len(parts), os.cpu_count() or 1)
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            summaries = pool.map(_run_part, parts, chunksize=1)
    else:
        summaries = [_run_part(parts[0])]
    return combine(spec, summaries, sharded=len(parts) > 1)


def combine(spec: FleetSpec, summaries: list[dict[str, Any]], *, sharded: bool) -> dict[str, Any]:
    timing = model.timing()
    helper_work = model.total(model.helper_operations(timing))
    snapshots = sum(s["snapshots"] for s in summaries)
    verdicts: Counter[str] = Counter()
    throttled: Counter[str] = Counter()
    peaks: dict[str, int] = {}
    helpers: dict[str, Any] = {}
    for s in summaries:
        verdicts.update(s["verdicts"])
        throttled.update(s["throttled"])
        peaks.update(s["peak_attached"])
        helpers.update({h: _helper_figures(i) for h, i in s["attachments"].items()})
    # The burst starts at 0 s; the helpers are done when the last volume is detached.
    makespan = max(h["last_detach"] or 0.0 for h in helpers.values())
    ideal = snapshots * helper_work / spec.helpers
    attached = sum(h["attached_seconds"] for h in helpers.values())
    idle = sum(h["idle_gaps_seconds"] for h in helpers.values())
    lost = snapshots - verdicts["verified"] - verdicts["failed"]
    lost += sum(len(s["claims_running"]) for s in summaries)
    return {
        "instances": spec.instances,
        "helpers": spec.helpers,
        "concurrency": spec.concurrency,
        "snapshots": snapshots,
        "burst_seconds": spec.burst_seconds,
        "throttle_every": spec.throttle_every,
        "sharded_by_helper": sharded,
        "real_seconds": round(max(s["real_seconds"] for s in summaries), 1),
        "real_seconds_all_parts": round(sum(s["real_seconds"] for s in summaries), 1),
        "verified": verdicts["verified"],
        "failed": verdicts["failed"],
        "lost": lost,
        "peak_attached": peaks,
        "makespan_seconds": round(makespan, 1),
        "all_verified_at_seconds": round(max(s["all_ended_at"] for s in summaries), 1),
        "helper_work_seconds": helper_work,
        "ideal_seconds": round(ideal, 1),
        "makespan_over_ideal": round(makespan / ideal, 3),
        # The helpers' attached time / 5: the ideal had the polling inside a turn been the
        # only waste, i.e. no helper ever idle between two restores.
        "attached_ideal_seconds": round(attached / spec.helpers, 1),
        # Between one restore's detach and the next one's attach, summed over the helpers.
        "idle_share": round(idle / (makespan * spec.helpers), 3) if makespan else 0.0,
        "helpers_detail": helpers,
        "transitions": sum(s["transitions"] for s in summaries),
        "turn_wait_rounds": sum(s["turn_waits"] for s in summaries),
        "lambda_invocations": sum(s["lambda_invocations"] for s in summaries),
        "throttled_calls": dict(sorted(throttled.items())),
        "volumes_left": sum(s["volumes_left"] for s in summaries),
        "locks_held": [h for s in summaries for h in s["locks_held"]],
        "failures": [f for s in summaries for f in s["failures"]],
    }
