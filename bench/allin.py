"""Measurement 5: what a verified snapshot costs, everything in, as the template deploys by
default (HelperMode=fleet): orchestration, Lambda, the helpers' instance-seconds and root
volumes, the temporary volumes, the ledger's requests and a month of the consistent snapshot.

The fleet-mode night runs in the full simulator as one part per helper place (MaxHelpers 1,
its instances' snapshots at the moments they have in the whole burst), side by side in
processes, as measurement 4 does with named helpers. With MaxHelpers 5 and one place each,
the whole stack launches five helpers while the first events arrive (none is Online yet, each
restore takes a free place) and then puts each restore in the least busy helper's line: about
the even split the parts model. Nothing else the simulator models couples two helpers.
"""

import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bench import model, scenarios
from bench.restore import billed
from bench.runs import Run, run
from operator_cli.storage import PRICE_PER_GB_MONTH as SNAPSHOT_PER_GB_MONTH
from operator_cli.storage import PRICE_SOURCE as SNAPSHOT_PRICE_SOURCE
from simulator.helpers import BILLING_MINIMUM_SECONDS, WINDOWS_ROOT_GIB
from simulator.template import load_template

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"

# EBS bills a volume per second with a 60-second minimum (EBS pricing page, "Amazon EBS
# volumes are billed on a per-second basis with a minimum of 60 seconds").
VOLUME_MINIMUM_SECONDS = 60.0

# DynamoDB on demand, us-east-1: NOT verified here. The figures are the list prices before
# November 2024 ($1.25 per million write request units, $0.25 per million read request
# units); AWS halved on-demand throughput prices then. The higher figures are kept: the
# ledger's share of the cost is tiny either way. Every ledger item is under 1 KB, so one
# request unit per write (UpdateItem, PutItem, DeleteItem) and per strongly consistent read
# up to 4 KB (GetItem, Query of one small item).
DYNAMODB_PER_WRITE = 1.25 / 1_000_000
DYNAMODB_PER_READ = 0.25 / 1_000_000
DYNAMODB_SOURCE = (
    "DynamoDB on demand, us-east-1, $1.25 per million writes and $0.25 per million reads: "
    "the list prices before November 2024, not verified here (higher than today's)"
)
DYNAMODB_WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
DYNAMODB_READS = ("dynamodb:GetItem", "dynamodb:Query")
# A BatchGetItem reads several items, each a request unit: the shared look's (looks.py) reads
# two (its item and a volume's record), its looker's one per volume of its answer. Counted at
# two a call: a floor for the looker's (the authorizer sees calls, not items).
DYNAMODB_BATCH_READS = ("dynamodb:BatchGetItem",)
DYNAMODB_ITEMS_PER_BATCH = 2

GOAL_DOLLARS = 0.02
GOAL_IDLE_SHARE = 0.10


@dataclass(frozen=True)
class HelperPrice:
    """HelperHourlyPrice as the template ships it, and what is known of it."""

    dollars_per_hour: float
    instance_type: str
    source: str


@cache
def helper_price() -> HelperPrice:
    """The template's defaults for HelperHourlyPrice and HelperInstanceType."""
    parameters = load_template(TEMPLATE).parameter_values({})
    return HelperPrice(
        float(parameters["HelperHourlyPrice"]),
        parameters["HelperInstanceType"],
        "template.yaml HelperHourlyPrice default, m6i.large Windows On-Demand in us-east-1:"
        " written from memory, UNVERIFIED (to confirm on the EC2 On-Demand pricing page;"
        " docs/simulated.md)",
    )


@cache
def function_memory_gb() -> dict[str, float]:
    return {name: f.memory / 1024 for name, f in load_template(TEMPLATE).functions.items()}


@dataclass(frozen=True)
class FleetModeSpec:
    instances: int = 100
    max_helpers: int = 5
    burst_seconds: float = 60.0
    throttle_every: int | None = None
    concurrency: int = 1


def parts(spec: FleetModeSpec) -> list[dict[str, Any]]:
    """One scenario per helper place: MaxHelpers 1, the instances assigned to it round robin,
    their events at their moments in the whole burst."""
    whole = scenarios.fleet_mode(
        instances=spec.instances,
        max_helpers=spec.max_helpers,
        burst_seconds=spec.burst_seconds,
        throttle_every=None,
        concurrency=spec.concurrency,
    )
    found = []
    for place in range(1, spec.max_helpers + 1):
        owners = {
            scenarios.instance_alias(i)
            for i in range(spec.instances)
            if scenarios.assigned_helper(i, spec.max_helpers) == scenarios.helper_alias(place)
        }
        snapshots = {
            alias: s
            for alias, s in whole["snapshots"].items()
            if s["volume"].split(".", 1)[0] in owners
        }
        part = {
            **whole,
            "name": f"{whole['name']}-place{place}",
            "parameters": {**whole["parameters"], "MaxHelpers": "1"},
            "instances": {a: i for a, i in whole["instances"].items() if a in owners},
            "snapshots": snapshots,
            "steps": [
                step
                for step in whole["steps"]
                if "deliver" not in step or step["deliver"]["snapshot"] in snapshots
            ],
        }
        if spec.throttle_every:
            part["faults"] = scenarios.throttling_faults(len(snapshots), spec.throttle_every)
        found.append(part)
    return found


def _merge(intervals: Sequence[tuple[float, float]]) -> float:
    """Seconds covered by the intervals (a helper at HelperConcurrency > 1 holds several)."""
    covered, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            covered += stop - max(start, end)
            end = stop
    return covered


def summarize(result: Run) -> dict[str, Any]:
    """The bill of one run, item by item (picklable, small)."""
    report = result.report
    sources = [s for s in report.snapshots if s.origin != "workflow"]
    memory = function_memory_gb()
    gb_seconds = sum(billed(s) * memory[f] for f, s in result.invocation_seconds)
    volume_gib_seconds = sum(
        v.gib * max((v.deleted_at or report.virtual_seconds) - v.created_at, VOLUME_MINIMUM_SECONDS)
        for v in result.temporary_volumes
    )
    helpers = []
    for h in result.launched_helpers:
        held = [
            (a.attached_at, a.detached_at if a.detached_at is not None else h.terminated_at or 0)
            for a in result.attachments
            if a.instance == h.instance_id
        ]
        helpers.append(
            {
                "instance_id": h.instance_id,
                "billed_seconds": round(h.billed_seconds, 1),
                "busy_seconds": round(_merge(held), 1),
                "restores": len(held),
                "launched_at": round(h.launched_at, 1),
                "terminated_at": None if h.terminated_at is None else round(h.terminated_at, 1),
            }
        )
    calls = result.api_calls
    return {
        "name": report.scenario,
        "real_seconds": round(result.real_seconds, 1),
        "virtual_seconds": report.virtual_seconds,
        "snapshots": len(sources),
        "verified": sum(1 for s in sources if s.verdict == "verified"),
        "failed": sum(1 for s in sources if s.verdict == "failed"),
        "transitions": sum(e.transitions for e in result.executions),
        "executions": len(result.executions),
        "lambda_invocations": len(result.invocation_seconds),
        "lambda_gb_seconds": round(gb_seconds, 3),
        "helpers": helpers,
        "temporary_volume_gib_seconds": round(volume_gib_seconds, 1),
        "consistent_snapshot_gib": round(
            sum(c.consistent_gib for c in result.consistent_changes), 4
        ),
        "consistent_snapshot_unmeasured": [
            str(u) for c in result.consistent_changes for u in c.unmeasured
        ],
        "dynamodb_writes": sum(calls[a] for a in DYNAMODB_WRITES),
        "dynamodb_reads": sum(calls[a] for a in DYNAMODB_READS)
        + DYNAMODB_ITEMS_PER_BATCH * sum(calls[a] for a in DYNAMODB_BATCH_READS),
        "api_calls": dict(calls.most_common()),
        "largest_item_bytes": result.largest_item_bytes,
        "failures": report.failures,
        "last_restore_ended_at": max((e.ended_at for e in result.restores()), default=0.0),
    }


def _run_part(scenario: dict[str, Any]) -> dict[str, Any]:
    return summarize(run(scenario))


def run_parts(scenarios_: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(scenarios_) == 1:
        return [_run_part(scenarios_[0])]
    workers = min(len(scenarios_), os.cpu_count() or 1)
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(_run_part, scenarios_, chunksize=1)


def bill(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole night's bill from its parts, per verified snapshot, and the helpers' idle
    share of their billed time."""
    prices = model.PRICES
    price = helper_price()
    total = {k: sum(s[k] for s in summaries) for k in (
        "snapshots", "verified", "failed", "transitions", "executions", "lambda_invocations",
        "lambda_gb_seconds", "temporary_volume_gib_seconds", "consistent_snapshot_gib",
        "dynamodb_writes", "dynamodb_reads",
    )}  # fmt: skip
    helpers = [h for s in summaries for h in s["helpers"]]
    billed_seconds = sum(h["billed_seconds"] for h in helpers)
    busy_seconds = sum(h["busy_seconds"] for h in helpers)
    # The helper's root volume (the AMI's 30 GiB, gp3 as the template launches it) lives
    # exactly as long as the instance is billed.
    root_gib_seconds = sum(
        WINDOWS_ROOT_GIB * max(h["billed_seconds"], VOLUME_MINIMUM_SECONDS) for h in helpers
    )
    gib_month = prices.per_gb_month / (prices.hours_per_month * 3600)  # per GiB-second
    dollars = {
        "transitions": total["transitions"] * prices.per_transition,
        "lambda": total["lambda_gb_seconds"] * prices.per_gb_second
        + total["lambda_invocations"] * prices.per_request,
        "helper_instances": billed_seconds * price.dollars_per_hour / 3600,
        "helper_root_volumes": root_gib_seconds * gib_month,
        "temporary_volumes": total["temporary_volume_gib_seconds"] * gib_month,
        "consistent_snapshots_one_month": total["consistent_snapshot_gib"] * SNAPSHOT_PER_GB_MONTH,
        "dynamodb": total["dynamodb_writes"] * DYNAMODB_PER_WRITE
        + total["dynamodb_reads"] * DYNAMODB_PER_READ,
    }
    verified = total["verified"]
    per_verified = sum(dollars.values()) / verified if verified else float("inf")
    idle = 1 - busy_seconds / billed_seconds if billed_seconds else 0.0
    return {
        **total,
        "helpers_launched": len(helpers),
        "helper_billed_seconds": round(billed_seconds, 1),
        "helper_busy_seconds": round(busy_seconds, 1),
        "helper_idle_share": round(idle, 4),
        "helpers_detail": helpers,
        "dollars": {k: round(v, 6) for k, v in dollars.items()},
        "dollars_total": round(sum(dollars.values()), 6),
        "dollars_per_verified": round(per_verified, 6),
        "dollars_per_verified_by_item": {
            k: round(v / verified, 6) if verified else None for k, v in dollars.items()
        },
        "goal_dollars_per_verified": GOAL_DOLLARS,
        "goal_idle_share": GOAL_IDLE_SHARE,
        "prices": {
            "helper_dollars_per_hour": price.dollars_per_hour,
            "helper_instance_type": price.instance_type,
            "helper_source": price.source,
            "helper_billing": "per second, one minute at least, launch to termination "
            f"({BILLING_MINIMUM_SECONDS:g} s minimum; simulator/helpers.py)",
            "gp3_per_gb_month": prices.per_gb_month,
            "snapshot_per_gb_month": SNAPSHOT_PER_GB_MONTH,
            "snapshot_source": SNAPSHOT_PRICE_SOURCE,
            "dynamodb_source": DYNAMODB_SOURCE,
        },
        "left_out": [
            "CloudWatch Logs ingestion and storage (the handlers' and the backup's logs)",
            "EventBridge: AWS services' events to the default bus are free",
            "SSM Run Command and standard parameters: no charge",
            "data transfer: the helpers reach SSM through VPC interface endpoints, billed per "
            "endpoint-hour and GB whether or not the workflow runs (the operator's network)",
        ],
        "block_model": "simulator/disks.py: 8 MiB/s written on each data partition while its "
        "shadow copy exists (shadow_copy_seconds 10 s); the revert writes it back, so the "
        "consistent snapshot differs from its source by that much (assumed, not measured)",
        "consistent_snapshot_unmeasured": [
            u for s in summaries for u in s["consistent_snapshot_unmeasured"]
        ],
        "failures": [f for s in summaries for f in s["failures"]],
        "real_seconds": round(max(s["real_seconds"] for s in summaries), 1),
        "largest_item_bytes": max(s.get("largest_item_bytes", 0) for s in summaries),
        "parts": len(summaries),
        "last_restore_ended_at": round(max(s["last_restore_ended_at"] for s in summaries), 1),
    }


def measure(spec: FleetModeSpec = FleetModeSpec()) -> dict[str, Any]:
    """The fleet-mode night, run as one part per helper place, and its bill."""
    summaries = run_parts(parts(spec))
    return {
        "instances": spec.instances,
        "max_helpers": spec.max_helpers,
        "concurrency": spec.concurrency,
        "burst_seconds": spec.burst_seconds,
        **bill(summaries),
        "parts_detail": [
            {k: v for k, v in s.items() if k not in ("helpers", "api_calls")} for s in summaries
        ],
        "api_calls": _sum_calls(summaries),
    }


def one_snapshot() -> dict[str, Any]:
    """The smallest night: one instance's one data volume, its own helper launched for it."""
    scenario = scenarios.fleet_mode(instances=1, max_helpers=1, throttle_every=None)
    scenario["name"] = "bench-fleet-mode-one"
    scenario["instances"] = {
        a: {**i, "volumes": i["volumes"][:2]} for a, i in scenario["instances"].items()
    }
    scenario["snapshots"] = {a: s for a, s in scenario["snapshots"].items() if a.endswith(".D")}
    scenario["steps"] = [
        s
        for s in scenario["steps"]
        if "deliver" not in s or s["deliver"]["snapshot"].endswith(".D")
    ]
    return bill(run_parts([scenario]))


def _sum_calls(summaries: list[dict[str, Any]]) -> dict[str, int]:
    calls: dict[str, int] = {}
    for s in summaries:
        for action, n in s["api_calls"].items():
            calls[action] = calls.get(action, 0) + n
    return dict(sorted(calls.items(), key=lambda kv: -kv[1]))
