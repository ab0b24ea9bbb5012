"""`python -m bench`: the measurements of issues #7 and #13, one table, bench/results.json."""

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import allin, coldstart, model, scale
from bench import fleet as fleet_module
from bench import restore as restore_module
from bench.table import Row, render

RESULTS = Path(__file__).resolve().parent / "results.json"
MEASUREMENTS = ("overhead", "cost", "coldstart", "fleet", "allin", "scale")


def _seconds(value: float) -> str:
    return f"{value:,.1f} s"


def _hours(value: float) -> str:
    return f"{value / 3600:.2f} h"


def _dollars(value: float) -> str:
    return f"${value:.6f}"


def overhead_rows(o: dict[str, Any]) -> list[Row]:
    return [
        Row(
            "1. overhead, one restore (2 min revert)",
            f"{_seconds(o['overhead_seconds'])} = {o['overhead_share']:.1%} of "
            f"{_seconds(o['workflow_seconds'])} (AWS operations {_seconds(o['aws_seconds'])})",
            "<= 5% of the restore",
            o["overhead_share"] <= 0.05,
        ),
        Row(
            "1. vs botocore waiters (15 s polls)",
            f"{_seconds(o['workflow_seconds'])} vs {_seconds(o['waiter_seconds'])} "
            f"(x{o['waiter_ratio']:.2f}); overhead {_seconds(o['overhead_seconds'])} vs "
            f"{_seconds(o['waiter_overhead_seconds'])}",
            "below the waiters",
            o["workflow_seconds"] < o["waiter_seconds"],
        ),
    ]


def cost_rows(short: dict[str, Any], long: dict[str, Any]) -> list[Row]:
    rows = []
    for c in (short, long):
        minutes = c["revert_seconds"] / 60
        rows.append(
            Row(
                f"2. transitions per restore ({minutes:g} min revert)",
                f"{c['transitions']} ({c['transitions_restore']} restore + "
                f"{c['transitions_other_executions']} skip of its own snapshot); "
                f"{c['lambda_invocations']} Lambda invocations",
                "<= 40",
                c["transitions"] <= 40,
            )
        )
    for c in (short, long):
        d = c["dollars"]
        rows.append(
            Row(
                f"2. cost per restore ({c['revert_seconds'] / 60:g} min revert)",
                f"{_dollars(c['dollars_total'])}: transitions {_dollars(d['transitions'])}, "
                f"Lambda {_dollars(d['lambda_gb_seconds'] + d['lambda_requests'])} "
                f"({c['lambda_invocations']} requests, {c['lambda_billed_seconds']:.1f} s billed "
                f"= {c['lambda_gb_seconds']:.2f} GB-s), volume {_dollars(d['volume'])} "
                f"({c['volume_gib']} GiB x {c['volume_hours']:.3f} h)",
                "-",
                None,
            )
        )
    rows.append(
        Row(
            "2. consistent snapshot kept (changed data vs its source)",
            f"{short['consistent_snapshot_changed_gib']:.3f} GiB = "
            f"{_dollars(short['consistent_snapshot_dollars_per_month'])}/month "
            "(ListChangedBlocks on the simulator's block model)"
            + (
                f"; not measured: {'; '.join(short['consistent_snapshot_unmeasured'])}"
                if short["consistent_snapshot_unmeasured"]
                else ""
            ),
            "-",
            None,
        )
    )
    rows.append(
        Row(
            "2. orchestration cost per minute",
            f"30 min: {_dollars(long['orchestration_dollars_per_minute'])}/min; "
            f"2 min: {_dollars(short['orchestration_dollars_per_minute'])}/min",
            "30 min <= 2 min",
            long["orchestration_dollars_per_minute"] <= short["orchestration_dollars_per_minute"],
        )
    )
    return rows


def coldstart_rows(c: dict[str, Any]) -> list[Row]:
    rows = [coldstart_row(c, "3. cold start: handler import / boto3", "<= x1.5")]
    if "dev_venv" in c:
        rows.append(coldstart_row(c["dev_venv"], "3. cold start, in the dev venv", "-"))
    return rows


def coldstart_row(c: dict[str, Any], name: str, goal: str) -> Row:
    worst = c["worst"].rsplit(".", 1)[-1]
    where = "dev venv" if c["where"] == coldstart.DEV_VENV.what else "deployment package"
    fallback = " (no runtime Python found)" if "fallback" in c else ""
    return Row(
        name,
        f"worst x{c['worst_ratio']:.2f} ({worst} {c['handlers'][c['worst']]['ms']:.0f} ms "
        f"vs boto3 {c['boto3_ms']:.0f} ms), median x{c['median_ratio']:.2f}, "
        f"{c['repetitions']} rounds; Python {c['python']}, {where}{fallback}",
        goal,
        c["worst_ratio"] <= 1.5 if goal != "-" else None,
    )


def fleet_rows(f: dict[str, Any]) -> list[Row]:
    per_restore = f["transitions"] / f["snapshots"]
    # Each retry of "Take a turn on the helper" after its 15-minute timeout.
    waiting = f["turn_wait_rounds"] / f["snapshots"]
    peaks = ", ".join(str(p) for p in f["peak_attached"].values())
    throttled = sum(f["throttled_calls"].values())
    return [
        Row(
            "4. fleet: snapshots verified",
            f"{f['verified']}/{f['snapshots']} ({f['failed']} failed; {throttled} calls "
            f"throttled); all verified at {_hours(f['all_verified_at_seconds'])}",
            "all",
            f["verified"] == f["snapshots"],
        ),
        Row(
            "4. fleet: most volumes per helper",
            f"{peaks} ({f['helpers']} helpers)",
            f"<= {f['concurrency']}",
            all(p <= f["concurrency"] for p in f["peak_attached"].values()),
        ),
        Row(
            "4. fleet: makespan vs ideal",
            f"{_hours(f['makespan_seconds'])} vs {_hours(f['ideal_seconds'])} "
            f"(x{f['makespan_over_ideal']:.2f}; {f['snapshots']} x "
            f"{f['helper_work_seconds']:g} s / {f['helpers']})",
            "<= x1.10",
            f["makespan_over_ideal"] <= 1.10,
        ),
        Row("4. fleet: restores lost", str(f["lost"]), "0", f["lost"] == 0),
        Row(
            "4. fleet: transitions per restore",
            f"{per_restore:.0f} ({waiting:.0f} waiting for a turn); helpers idle "
            f"{f['idle_share']:.0%} of the makespan",
            "-",
            None,
        ),
    ]


def allin_rows(night: dict[str, Any], one: dict[str, Any]) -> list[Row]:
    rows = []
    for name, b in (
        (
            f"5. all-in per verified snapshot, fleet mode ({night['snapshots']} snapshots, "
            f"MaxHelpers {night['max_helpers']})",
            night,
        ),
        ("5. all-in per verified snapshot, fleet mode (one snapshot alone)", one),
    ):
        each = b["dollars_per_verified_by_item"]
        rows.append(
            Row(
                name,
                f"{_dollars(b['dollars_per_verified'])} ({b['verified']}/{b['snapshots']} "
                f"verified): helpers {_dollars(each['helper_instances'])} "
                f"({b['helpers_launched']} x m6i.large Windows at "
                f"${b['prices']['helper_dollars_per_hour']}/h, UNVERIFIED price), their root "
                f"volumes {_dollars(each['helper_root_volumes'])}, temporary volumes "
                f"{_dollars(each['temporary_volumes'])}, consistent snapshot 1 month "
                f"{_dollars(each['consistent_snapshots_one_month'])}, transitions "
                f"{_dollars(each['transitions'])}, Lambda {_dollars(each['lambda'])}, "
                f"DynamoDB {_dollars(each['dynamodb'])}",
                f"<= ${allin.GOAL_DOLLARS}",
                b["dollars_per_verified"] <= allin.GOAL_DOLLARS,
            )
        )
        rows.append(
            Row(
                name.replace("all-in per verified snapshot", "helpers idle, share of billed time"),
                f"{b['helper_idle_share']:.1%} ({b['helper_billed_seconds']:,.0f} s billed, "
                f"{b['helper_busy_seconds']:,.0f} s with a restore's volume attached)",
                f"<= {allin.GOAL_IDLE_SHARE:.0%}",
                b["helper_idle_share"] <= allin.GOAL_IDLE_SHARE,
            )
        )
    return rows


def scale_rows(s: dict[str, Any]) -> list[Row]:
    c, f, o, o72, b = s["check"], s["fleet"], s["overload"], s["overload_72h"], s["backup"]
    worst = c["figures"][c["worst"]]
    rows = [
        Row(
            f"6. fast model (bench/des.py) vs full simulator, {c['snapshots']} snapshots",
            f"worst {c['worst']}: {worst['model']:,} vs {worst['full']:,} "
            f"({worst['deviation']:.2%}); {len(c['figures'])} figures compared",
            "each within 2%",
            c["within"],
        )
    ]
    name = (
        f"7. {f['instances']:,} instances / {f['snapshots_expected']:,} snapshots "
        f"(MaxHelpers {f['max_helpers']}, concurrency {f['concurrency']})"
    )
    hours = f["all_verified_after_first_event_seconds"]
    ec2_most = [(a, n) for a, n in f["throttled"].items() if a.startswith("ec2:")][:3]
    most = ", ".join(f"{a} {n:,}" for a, n in ec2_most) or "none"
    paced = ", ".join(
        f"{a.removeprefix('ec2:')} {r:g}/s ({f.get('paced_waits', {}).get(a, 0):,} slots waited "
        "for by the state machine)"
        for a, r in f.get("paced_rates", {}).items()
    )
    ssm = f["throttled"].get("ssm:SendCommand", 0)
    details = {
        "all verified within 6 h of the first event": f"{f['verified']:,}/"
        f"{f['snapshots_expected']:,} verified, the last {(hours or 0) / 3600:.2f} h after the "
        "first event",
        "0 failed by throttling, line size or waiting": f"{f['failed']} failed: "
        + (", ".join(f"{n} {why}" for why, n in f["failed_why"].items()) or "none"),
        "<= 1% of EC2 calls throttled": f"{f['ec2_throttled_share']:.3%} of "
        f"{f['ec2_calls']:,} calls ({most}); paced: {paced or 'nothing'}; not EC2: "
        f"ssm:SendCommand {ssm:,} attempts throttled (its bucket assumed)",
        "DescribeVolumes <= 5/s at peak": f"{f['peak_describe_volumes_per_second']}/s at peak, "
        f"{f.get('mean_describe_volumes_per_second', '?')}/s on average over the seconds with "
        f"any; {f.get('describe_volumes_per_snapshot', '?')} per snapshot (one shared look a "
        "second by our tag for every wait and ours? check, its answer in the ledger; a look "
        "alone when no answer is fresh or the volume is newer than it)",
        "<= $0.02 per verified snapshot": f"{_dollars(f['dollars_per_verified'])} all-in",
        "helpers idle <= 10%": f"{f['helper_idle_share']:.1%} of billed time",
    }
    short = {
        "all verified within 6 h of the first event": "verified",
        "0 failed by throttling, line size or waiting": "failed",
        "<= 1% of EC2 calls throttled": "EC2 throttled",
        "DescribeVolumes <= 5/s at peak": "DescribeVolumes",
        "<= $0.02 per verified snapshot": "all-in cost",
        "helpers idle <= 10%": "helpers idle",
    }
    for goal, met in f["goals"].items():
        rows.append(Row(f"{name}: {short[goal]}", details[goal], goal, met))
    item = s["largest_ledger_item_bytes"]
    rows.append(
        Row(
            f"{name}: other limits",
            f"peaks: StartExecution {f['peak_start_executions_per_second']}/s (refill 300/s), "
            f"transitions {f['peak_transitions_per_second']}/s (1,500/s), Lambda ~"
            f"{f['peak_lambda_concurrency_estimate']} concurrent (1,000), a helper's turns item "
            f"{f['peak_turn_item_writes_per_second']} writes/s (1,000 WCU); largest ledger item "
            f"{item} B (full simulator, 300 snapshots)",
            "under each; item <= 10 KB",
            item <= scale.GOAL_ITEM_BYTES
            and f["peak_start_executions_per_second"] <= 300
            and f["peak_transitions_per_second"] <= 1500
            and f["peak_lambda_concurrency_estimate"] <= 1000
            and f["peak_turn_item_writes_per_second"] <= 1000,
        )
    )
    for over in (o, o72):
        rows.append(
            Row(
                f"8. overload: MaxHelpers 1, {over['snapshots']} snapshots at once, "
                f"HelperMaxHours {over['helper_max_hours']:g}",
                f"{over['verified']} verified, {over['failed']} failed"
                + (
                    f" ({', '.join(f'{n} {why}' for why, n in over['failed_why'].items())})"
                    if over["failed"]
                    else ""
                )
                + f"; longest wait in line {over['longest_wait_seconds'] / 3600:.1f} h",
                "0 failed, backlog carried",
                over["failed"] == 0,
            )
        )
    e = s["overload_evidence"]
    rows.append(
        Row(
            "8. overload in the full simulator: MaxHelpers 1, HelperMaxHours 1, "
            f"{e['snapshots']} at once",
            f"{e['verdicts']}; {len(e['helpers'])} helper(s), the first terminated at "
            f"{e['helpers'][0]['terminated_at']} s"
            + "".join(f"; {n} x {why[:90]}" for why, n in e["reasons"].items()),
            "-",
            None,
        )
    )
    for r in b["by_case"]:
        default = (r["window_hours"], r["max_concurrency"]) == (
            b["default_window_hours"],
            b["default_concurrency"],
        )
        rows.append(
            Row(
                f"9. nightly backup of {b['instances']:,} instances: {r['window_hours']} h "
                f"window, MaxConcurrency {r['max_concurrency']}"
                + (" (the defaults)" if default else ""),
                f"{r['instances_not_started_before_cutoff']:,} instances not started, "
                f"{r['snapshots_failed_throttled']:,} snapshots failed throttled, "
                f"{r['script_retries']:,} script retries, last backup ended at "
                f"{r['last_backup_ended_at'] / 3600:.2f} h; {r['restores_failed']} restores "
                "failed" + ("" if default else f"; fits: {'yes' if r['fits'] else 'no'}"),
                f"fits in {r['window_hours']} h" if default else "-",
                r["fits"] if default else None,
            )
        )
    rows.append(
        Row(
            "9. the backup's floor: CreateSnapshot's refill (100, 5/s, assumed)",
            f"{b['create_snapshot_bound_seconds']:,.0f} s for {b['snapshots']:,} snapshots; "
            f"the backup's own pace (documents/backup.ps1) at most "
            f"{b['backup_snapshots_per_second']:g}/s: {b['backup_paced_seconds']:,.0f} s; "
            f"no backup starts in a window's last {b['cutoff_hours']} h",
            "-",
            None,
        )
    )
    return rows


# What each measurement writes in results.json.
KEYS: dict[str, tuple[str, ...]] = {
    "overhead": ("overhead", "overhead_30min"),
    "cost": ("cost",),
    "coldstart": ("coldstart",),
    "fleet": ("fleet",),
    "allin": ("allin",),
    "scale": ("scale",),
}


def _previous(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def keep_previous(path: Path, results: dict[str, Any], ran: list[str]) -> dict[str, Any]:
    """A partial run (--only) keeps the other measurements' figures of the file it rewrites,
    and says which ones it kept."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return results
    kept = [m for m in MEASUREMENTS if m not in ran and all(k in previous for k in KEYS[m])]
    for m in kept:
        for key in KEYS[m]:
            results[key] = previous[key]
    if kept:
        results["kept_from_previous_run"] = kept
        seconds = previous.get("real_seconds_by_part", {})
        results["real_seconds_by_part"] = {**seconds, **results["real_seconds_by_part"]}
    return results


def rows_of(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if "overhead" in results:
        rows += overhead_rows(results["overhead"])
    if "cost" in results:
        rows += cost_rows(results["cost"]["2min"], results["cost"]["30min"])
    if "coldstart" in results:
        rows += coldstart_rows(results["coldstart"])
    if "fleet" in results:
        rows += fleet_rows(results["fleet"])
    if "allin" in results:
        rows += allin_rows(results["allin"]["night"], results["allin"]["one_snapshot"])
    if "scale" in results:
        rows += scale_rows(results["scale"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", nargs="+", choices=MEASUREMENTS, default=list(MEASUREMENTS))
    parser.add_argument("--json", default=str(RESULTS), help="results file ('' for none)")
    parser.add_argument("--repetitions", type=int, default=5, help="cold start rounds")
    parser.add_argument("--instances", type=int, default=100, help="fleet instances")
    parser.add_argument("--helpers", type=int, default=5, help="fleet helpers")
    parser.add_argument(
        "--one-simulation",
        action="store_true",
        help="run the fleet as one simulation instead of one per helper (much slower)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args(argv)

    began = time.monotonic()
    results: dict[str, Any] = {
        "model": {"latencies": model.LATENCIES, "why": model.WHY},
        "prices": asdict(model.PRICES),
    }
    real: dict[str, float] = {}
    if "overhead" in args.only or "cost" in args.only:
        short = restore_module.restore_run(model.SHORT_REVERT_SECONDS)
        long = restore_module.restore_run(model.LONG_REVERT_SECONDS)
        for r in (short, long):
            if not r.report.ok:
                print(f"{r.report.scenario}: {'; '.join(r.report.failures)}", file=sys.stderr)
                return 2
        if "overhead" in args.only:
            results["overhead"] = restore_module.overhead(short, model.SHORT_REVERT_SECONDS)
            results["overhead_30min"] = restore_module.overhead(long, model.LONG_REVERT_SECONDS)
        if "cost" in args.only:
            size = model.DATA_VOLUME_GIB
            results["cost"] = {
                "2min": restore_module.cost(short, model.SHORT_REVERT_SECONDS, size),
                "30min": restore_module.cost(long, model.LONG_REVERT_SECONDS, size),
            }
        real["one restore, 2 and 30 min"] = time.monotonic() - began
    if "coldstart" in args.only:
        mark = time.monotonic()
        results["coldstart"] = coldstart.measure_cold_start(args.repetitions)
        real["cold start"] = time.monotonic() - mark
    if "fleet" in args.only:
        mark = time.monotonic()
        spec = fleet_module.FleetSpec(instances=args.instances, helpers=args.helpers)
        results["fleet"] = fleet_module.measure(spec, shards=not args.one_simulation)
        real["fleet"] = time.monotonic() - mark
    if "allin" in args.only:
        mark = time.monotonic()
        results["allin"] = {
            "night": allin.measure(allin.FleetModeSpec(instances=args.instances)),
            "one_snapshot": allin.one_snapshot(),
        }
        real["all-in cost, fleet mode"] = time.monotonic() - mark
    if "scale" in args.only:
        mark = time.monotonic()
        full = results.get("allin") or _previous(Path(args.json)).get("allin")
        if not full:
            print("scale needs the all-in measurement first (--only allin scale)", file=sys.stderr)
            return 2
        night = full["night"]
        results["scale"] = {
            "check": scale.check(night, allin.FleetModeSpec(instances=args.instances)),
            "fleet": scale.fleet(night),
            "overload": scale.overload(night),
            "overload_72h": scale.overload(night, max_hours=72),
            "overload_evidence": scale.overload_evidence(),
            "backup": scale.backup_window(night),
            "largest_ledger_item_bytes": night.get("largest_item_bytes", 0),
        }
        real["scale (fast model)"] = time.monotonic() - mark
    results["real_seconds"] = round(time.monotonic() - began, 1)
    results["real_seconds_by_part"] = {k: round(v, 1) for k, v in real.items()}
    if args.json and set(args.only) != set(MEASUREMENTS):
        results = keep_previous(Path(args.json), results, args.only)
    rows = rows_of(results)
    results["table"] = [asdict(row) for row in rows]

    print(render(rows))
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in real.items())
    print(f"\n{results['real_seconds']:.0f} s of real time ({parts})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"written: {args.json}")
    missed = [row.measurement for row in rows if row.met is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
