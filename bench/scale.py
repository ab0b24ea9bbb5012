"""Measurements 6 to 8, on the fast model (bench/des.py): the model checked against the full
simulator at 300 snapshots, a fleet of 10,000 instances and 25,000 snapshots with the
account's API limits, the overload of one helper with 500 snapshots at once, and the nightly
backup of 10,000 instances in its maintenance window."""

import time
from collections import Counter
from typing import Any

from bench import allin, des, scenarios
from bench.runs import run
from tools.cfn_template import load_template

# The figures the fast model must give within 2% of the full simulator at 300 snapshots.
CHECKED = (
    "verified",
    "transitions",
    "lambda_invocations",
    "lambda_gb_seconds",
    "helper_billed_seconds",
    "helper_busy_seconds",
    "temporary_volume_gib_seconds",
    "last_restore_ended_at",
    "dollars_per_verified",
    "ec2_calls",
)
TOLERANCE = 0.02

# The 10,000-instance fleet: C: and D: on every instance, E: too on every other one.
FLEET_INSTANCES = 10_000
FLEET_VOLUMES = ([30.0, 50.0], [30.0, 50.0, 100.0])
# The stack for it: MaxHelpers at the template's MaxValue (100), and HelperConcurrency so
# that 25,000 turns of 216 s fit in the 6 h goal with room (25,000 x 216 s / 400 = 3.75 h).
# A helper running 4 restores at once is taken to take 216 s for each, as at 1 (the disk
# tool's commands: 3 of the agent's 5 workers each; the disks' I/O is not modelled).
FLEET_MAX_HELPERS = 100
FLEET_CONCURRENCY = 4
SIX_HOURS = 6 * 3600
GOAL_EC2_THROTTLED = 0.01
GOAL_DESCRIBE_VOLUMES_PER_SECOND = 5
GOAL_ITEM_BYTES = 10 * 1024


def _per_restore(night: dict[str, Any], key: str) -> float:
    return float(night[key]) / night["snapshots"] if night["snapshots"] else 0.0


def model_night(night: dict[str, Any], full: dict[str, Any], **stack: Any) -> dict[str, Any]:
    """One modelled night with what the model reads off the full simulator per restore (the
    consistent snapshot's changed data, the ledger's requests) and its bill as bench/allin.py
    makes it."""
    m = des.run(
        des.Night(
            **night,
            **stack,
            consistent_gib_per_restore=_per_restore(full, "consistent_snapshot_gib"),
            dynamodb_writes_per_restore=_per_restore(full, "dynamodb_writes"),
            dynamodb_reads_per_restore=_per_restore(full, "dynamodb_reads"),
        )
    )
    return des.figures(m)


def _billed(figures: dict[str, Any]) -> dict[str, Any]:
    """bench/allin.py's bill of a modelled night."""
    summary = {
        **{
            k: figures[k]
            for k in (
                "snapshots",
                "verified",
                "failed",
                "transitions",
                "executions",
                "lambda_invocations",
                "lambda_gb_seconds",
                "temporary_volume_gib_seconds",
                "consistent_snapshot_gib",
                "dynamodb_writes",
                "dynamodb_reads",
                "last_restore_ended_at",
            )
        },
        "helpers": figures["helpers_detail"],
        "consistent_snapshot_unmeasured": [],
        "failures": [],
        "real_seconds": 0.0,
    }
    return allin.bill([summary])


def check(full: dict[str, Any], spec: allin.FleetModeSpec) -> dict[str, Any]:
    """The fast model against the full simulator's fleet-mode night (bench/allin.py): the same
    parts, the same events; each figure within 2%."""
    parts = allin.parts(spec)
    modelled = [
        model_night({"arrivals": des.arrivals_of(p)}, full, max_helpers=1, seed=n)
        for n, p in enumerate(parts)
    ]
    sums = {
        k: sum(f[k] for f in modelled)
        for k in (
            "snapshots",
            "verified",
            "failed",
            "transitions",
            "executions",
            "lambda_invocations",
            "lambda_gb_seconds",
            "temporary_volume_gib_seconds",
            "consistent_snapshot_gib",
            "dynamodb_writes",
            "dynamodb_reads",
            "ec2_calls",
        )
    }
    sums["last_restore_ended_at"] = max(f["last_restore_ended_at"] for f in modelled)
    sums["helpers_detail"] = [h for f in modelled for h in f["helpers_detail"]]
    bill = _billed(sums)
    model = {**sums, **bill, "ec2_calls": sums["ec2_calls"]}
    full_ec2 = sum(v for a, v in full["api_calls"].items() if a.startswith("ec2:"))
    reference = {**full, "ec2_calls": full_ec2}
    rows = {}
    for key in CHECKED:
        f, m = float(reference[key]), float(model[key])
        deviation = abs(m - f) / abs(f) if f else abs(m)
        rows[key] = {
            "full": round(f, 6),
            "model": round(m, 6),
            "deviation": round(deviation, 4),
            "within": deviation <= TOLERANCE,
        }
    return {
        "snapshots": full["snapshots"],
        "tolerance": TOLERANCE,
        "figures": rows,
        "within": all(r["within"] for r in rows.values()),
        "worst": max(rows, key=lambda k: rows[k]["deviation"]),
    }


def fleet_backup(instances: int = FLEET_INSTANCES) -> list[list[float]]:
    return [list(FLEET_VOLUMES[i % 2]) for i in range(instances)]


def fleet_arrivals() -> list[tuple[float, float]]:
    """25,000 snapshot events as fast as the backup may take the snapshots: its CreateSnapshot
    is paced by design (documents/backup.ps1: one per $SnapshotGapSeconds per script, the
    template's BackupMaxConcurrency scripts at once), so at most BACKUP_SNAPSHOTS_PER_SECOND
    (2.5: 2.8 h in all), the first once the first snapshot has completed; each snapshot's
    CreateSnapshot takes its token from the bucket the restores' consistent snapshots share."""
    first = des.T["snapshot_seconds"] + des.T["event_delivery_seconds"]
    sizes = [gib for volumes in fleet_backup() for gib in volumes]
    return [(first + k / BACKUP_SNAPSHOTS_PER_SECOND, gib) for k, gib in enumerate(sizes)]


def fleet(full: dict[str, Any]) -> dict[str, Any]:
    """10,000 instances, 25,000 snapshots arriving over the backup's window, with the
    account's limits; the goals of issue #13 item 5."""
    began = time.monotonic()
    f = model_night(
        {"arrivals": fleet_arrivals(), "arrivals_take_backup_tokens": True},
        full,
        max_helpers=FLEET_MAX_HELPERS,
        concurrency=FLEET_CONCURRENCY,
    )
    bill = _billed(f)
    expected = sum(len(v) for v in fleet_backup())
    within = f["all_verified_after_first_event_seconds"]
    goals = {
        "all verified within 6 h of the first event": f["verified"] == expected
        and within is not None
        and within <= SIX_HOURS,
        "0 failed by throttling, line size or waiting": f["failed"] == 0,
        "<= 1% of EC2 calls throttled": f["ec2_throttled_share"] <= GOAL_EC2_THROTTLED,
        "DescribeVolumes <= 5/s at peak": f["peak_describe_volumes_per_second"]
        <= GOAL_DESCRIBE_VOLUMES_PER_SECOND,
        "<= $0.02 per verified snapshot": bill["dollars_per_verified"] <= allin.GOAL_DOLLARS,
        "helpers idle <= 10%": bill["helper_idle_share"] <= allin.GOAL_IDLE_SHARE,
    }
    return {
        "instances": FLEET_INSTANCES,
        "snapshots_expected": expected,
        "max_helpers": FLEET_MAX_HELPERS,
        "concurrency": FLEET_CONCURRENCY,
        **{k: v for k, v in f.items() if k != "helpers_detail"},
        "dollars_per_verified": bill["dollars_per_verified"],
        "dollars_per_verified_by_item": bill["dollars_per_verified_by_item"],
        "helper_idle_share": bill["helper_idle_share"],
        "goals": goals,
        "limits": {
            a: {"size": b.size, "refill": b.refill, "source": b.source}
            for a, b in {
                **des.BUCKETS,
                "ec2:Describe*": des.DESCRIBE,
                "states:StartExecution": des.START_EXECUTION,
                "states:transitions": des.TRANSITIONS,
            }.items()
        },
        "lambda_concurrency_limit": des.LAMBDA_CONCURRENCY,
        "partition_wcu_limit": des.PARTITION_WCU,
        "real_seconds": round(time.monotonic() - began, 1),
    }


def overload(full: dict[str, Any], snapshots: int = 500, max_hours: float = 12.0) -> dict[str, Any]:
    """MaxHelpers 1, 500 snapshots at once: none may fail, the backlog carries over (each
    restore waits in line up to MaxWaitHours, 36 h). `max_hours`: HelperMaxHours (the
    template's default 12, at most 72)."""
    began = time.monotonic()
    f = model_night(
        {"arrivals": [(0.0, 50.0)] * snapshots},
        full,
        max_helpers=1,
        concurrency=1,
        max_hours=max_hours,
    )
    return {
        "snapshots": snapshots,
        "max_helpers": 1,
        "helper_max_hours": max_hours,
        **{k: v for k, v in f.items() if k not in ("helpers_detail", "api_calls")},
        "real_seconds": round(time.monotonic() - began, 1),
    }


def overload_evidence() -> dict[str, Any]:
    """The full simulator on a small copy of the overload: MaxHelpers 1, HelperMaxHours 1 (the
    template's least), 24 snapshots at once (5,200 s of turns): what becomes of the restores
    in line when the helper reaches HelperMaxHours."""
    scenario = scenarios.fleet_mode(
        instances=8, max_helpers=1, throttle_every=None, burst_seconds=1.0
    )
    scenario["name"] = "bench-overload-helper-max-hours"
    scenario["parameters"]["HelperMaxHours"] = "1"
    result = run(scenario)
    sources = [s for s in result.report.snapshots if s.origin != "workflow"]
    return {
        "snapshots": len(sources),
        "helper_max_hours": 1,
        "verdicts": dict(Counter(s.verdict for s in sources)),
        "reasons": dict(
            Counter((s.reason or s.error or "")[:160] for s in sources if s.verdict != "verified")
        ),
        "helpers": [
            {
                "launched_at": h.launched_at,
                "terminated_at": h.terminated_at,
            }
            for h in result.launched_helpers
        ],
        "real_seconds": round(result.real_seconds, 1),
    }


# The maintenance window as template.yaml makes it: BackupWindowHours (its default and its
# least), the window's Cutoff (no backup starts in the last hours), BackupMaxConcurrency's
# default; the model also tries the concurrencies around it.
_TEMPLATE = load_template(allin.TEMPLATE)
_WINDOW_HOURS = _TEMPLATE["Parameters"]["BackupWindowHours"]
WINDOW_HOURS = int(_WINDOW_HOURS["Default"])
SHORTEST_WINDOW_HOURS = int(_WINDOW_HOURS["MinValue"])
CUTOFF_HOURS = int(_TEMPLATE["Resources"]["BackupWindow"]["Properties"]["Cutoff"])
DEFAULT_CONCURRENCY = int(_TEMPLATE["Parameters"]["BackupMaxConcurrency"]["Default"])
# The backup's CreateSnapshot bound by design: MaxConcurrency scripts, one call per gap each.
BACKUP_SNAPSHOTS_PER_SECOND = DEFAULT_CONCURRENCY / des.BACKUP_RETRY.gap_seconds
# (window hours, MaxConcurrency): the default window below (the default before the paced
# start), at and above the default concurrency; the shortest window from the default up to
# all that can start in its hour.
BACKUP_CASES = (
    (WINDOW_HOURS, 30),
    (WINDOW_HOURS, DEFAULT_CONCURRENCY),
    (WINDOW_HOURS, 200),
    (SHORTEST_WINDOW_HOURS, DEFAULT_CONCURRENCY),
    (SHORTEST_WINDOW_HOURS, 500),
    (SHORTEST_WINDOW_HOURS, 3000),
)


def backup_night(hours: int, concurrency: int) -> dict[str, Any]:
    """The nightly backup of 10,000 instances in a window of `hours` at MaxConcurrency
    `concurrency`, the restores its snapshots start running alongside (CreateSnapshot's
    bucket, 100 and 5/s, shared with their consistent snapshots)."""
    m = des.run(
        des.Night(
            [],
            max_helpers=FLEET_MAX_HELPERS,
            concurrency=FLEET_CONCURRENCY,
            backup=fleet_backup(),
            backup_concurrency=concurrency,
            backup_cutoff_seconds=(hours - CUTOFF_HOURS) * 3600.0,
        )
    )
    f = des.figures(m)
    expected = sum(len(v) for v in fleet_backup())
    ended = f["backup_ended_at"]
    fits = (
        f["backup_instances_missed"] == 0
        and f["backup_snapshots_failed"] == 0
        and ended <= hours * 3600
    )
    return {
        "window_hours": hours,
        "max_concurrency": concurrency,
        "instances_not_started_before_cutoff": f["backup_instances_missed"],
        "snapshots_taken": f["snapshots"],
        "snapshots_not_taken": expected - f["snapshots"],
        "snapshots_failed_throttled": f["backup_snapshots_failed"],
        "script_retries": f["backup_retries"],
        "create_snapshot_attempts_throttled": f["create_snapshot_throttled"],
        "last_backup_ended_at": ended,
        "restores_failed": f["failed"],
        "restores_failed_why": f["failed_why"],
        "fits": fits,
    }


def backup_window(full: dict[str, Any] | None = None) -> dict[str, Any]:
    """The nightly backup of 10,000 instances: does the window start every instance before
    its cutoff, take every snapshot (the script's retries included), end in the window? At
    the template's window and concurrency, and around them."""
    began = time.monotonic()
    bucket = des.EC2_BUCKETS["ec2:CreateSnapshot"]
    snapshots = sum(len(v) for v in fleet_backup())
    rows = [backup_night(hours, concurrency) for hours, concurrency in BACKUP_CASES]
    retry = des.BACKUP_RETRY
    return {
        "instances": FLEET_INSTANCES,
        "snapshots": snapshots,
        "per_instance_seconds_before_snapshots": des.BACKUP_BEFORE_SNAPSHOTS,
        "per_instance_seconds_after_snapshots": des.BACKUP_AFTER_SNAPSHOTS,
        "retry": {
            "codes": list(retry.codes),
            "base_seconds": retry.base_seconds,
            "cap_seconds": retry.cap_seconds,
            "budget_seconds": retry.budget_seconds,
            "sdk_attempts": des.BOTOCORE_ATTEMPTS,
            "source": "documents/backup.ps1 (simulator/backup_retry.py)",
        },
        "create_snapshot_bucket": {
            "size": bucket.size,
            "refill": bucket.refill,
            "source": bucket.source + "; ASSUMED, not re-read",
        },
        # Whatever the concurrency: CreateSnapshot's refill alone needs this long.
        "create_snapshot_bound_seconds": round((snapshots - bucket.size) / bucket.refill, 1),
        # The backup's own pace by design (documents/backup.ps1's gap, the default
        # MaxConcurrency), and how long 25,000 snapshots take at it.
        "backup_snapshots_per_second": BACKUP_SNAPSHOTS_PER_SECOND,
        "backup_paced_seconds": round(snapshots / BACKUP_SNAPSHOTS_PER_SECOND, 1),
        "cutoff_hours": CUTOFF_HOURS,
        "default_window_hours": WINDOW_HOURS,
        "default_concurrency": DEFAULT_CONCURRENCY,
        "by_case": rows,
        "fits_by_default": next(
            r["fits"]
            for r in rows
            if (r["window_hours"], r["max_concurrency"]) == (WINDOW_HOURS, DEFAULT_CONCURRENCY)
        ),
        "shortest_window_fits": any(
            r["fits"] for r in rows if r["window_hours"] == SHORTEST_WINDOW_HOURS
        ),
        "real_seconds": round(time.monotonic() - began, 1),
    }
