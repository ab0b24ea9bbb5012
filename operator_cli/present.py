"""The report in each format: table (terminal), csv, json, html (present_html)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from operator_cli import changed
from operator_cli.executions import clock
from operator_cli.snapshots import PENDING, VssSnapshot
from operator_cli.storage import PRICE_SOURCE, InstanceStorage, total_monthly
from vss_restore import tags

FORMATS = ("table", "csv", "json", "html")
VERDICTS = (tags.VERIFIED, tags.FAILED, PENDING)


@dataclass(frozen=True)
class Report:
    region: str
    source: str  # the stack read, or "" when told where to look
    vss_tag: str
    since: datetime
    generated: datetime
    snapshots: list[VssSnapshot]
    # Every snapshot of ours kept, whatever its age, per instance (operator_cli/storage.py).
    storage: list[InstanceStorage] = field(default_factory=list)
    account: str = ""  # the account's ID, when the report reads several places
    # `report --storage`: the changed data, measured (operator_cli/changed.py).
    measured: list[changed.InstanceChanges] | None = None
    # Every verified snapshot, whatever its age, whose latest re-verification failed
    # (snapshots.reverify_failures): the weekly sample reaches further back than --since.
    reverify_failures: list[VssSnapshot] = field(default_factory=list)

    @property
    def failures(self) -> list[VssSnapshot]:
        failed = [s for s in self.snapshots if s.status == tags.FAILED]
        return sorted(failed, key=lambda s: s.checked_at or s.started.isoformat(), reverse=True)

    @property
    def failed_reverifications(self) -> list[VssSnapshot]:
        """The latest failed re-verifications first."""
        return sorted(self.reverify_failures, key=lambda s: s.reverified_at, reverse=True)

    @property
    def weaker(self) -> list[VssSnapshot]:
        """Verified by the newest-copy rule: it may have reverted a copy taken after the backup."""
        return [s for s in self.snapshots if s.status == tags.VERIFIED and s.weaker_rule]

    def counts(self) -> Counter[str]:
        return Counter(s.status for s in self.snapshots)

    def by_day(self) -> list[tuple[str, Counter[str]]]:
        """(day of the snapshots, verdict -> how many), oldest first."""
        days: dict[str, Counter[str]] = {}
        for snapshot in self.snapshots:
            days.setdefault(snapshot.day, Counter())[snapshot.status] += 1
        return sorted(days.items())

    def groups(self) -> Iterator[tuple[str, list[tuple[str, list[VssSnapshot]]]]]:
        """instance -> backup set -> snapshots, in the order the snapshots are sorted."""
        by_instance: dict[str, dict[str, list[VssSnapshot]]] = {}
        for snapshot in self.snapshots:
            sets = by_instance.setdefault(snapshot.instance_id, {})
            sets.setdefault(snapshot.backup_set, []).append(snapshot)
        for instance_id, sets in by_instance.items():
            yield instance_id, list(sets.items())

    def where(self) -> str:
        stack = f"stack {self.source}, " if self.source else ""
        account = f"account {self.account}, " if self.account else ""
        return f"{account}{self.region} ({stack}VSS tag {self.vss_tag})"


def headline(report: Report) -> str:
    counts = report.counts()
    total = len(report.snapshots)
    noun = "snapshot" if total == 1 else "snapshots"
    failed = len(report.reverify_failures)
    reverify = f"; {failed} FAILED RE-VERIFICATION" + ("S" if failed > 1 else "") if failed else ""
    return f"{total} VSS {noun}: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS) + reverify


REVERIFY_NOTE = (
    "verified the night it was taken, but restored again later (the weekly re-verification) "
    "it failed: a restore today would likely fail the same way; the verdict stands as the "
    "night found it"
)


def reverified(snapshot: VssSnapshot) -> str:
    """The latest re-verification in a few words: "failed 2026-11-08 00:12", or ""."""
    if not snapshot.reverify_result:
        return ""
    return f"{snapshot.reverify_result} {snapshot.reverified_at[:16].replace('T', ' ')}"


WEAKER_NOTE = (
    "the newest-copy rule (no shadow copy ID recorded by the backup) may have reverted a "
    "Previous Versions copy taken after the backup"
)


def rule_label(snapshot: VssSnapshot) -> str:
    return f"{snapshot.rule} (weaker)" if snapshot.weaker_rule else snapshot.rule


def instance_label(snapshot: VssSnapshot) -> str:
    if not snapshot.instance_id:
        return "instance unknown"
    if snapshot.instance_name:
        return f"{snapshot.instance_id} ({snapshot.instance_name})"
    return snapshot.instance_id


def set_label(snapshot: VssSnapshot) -> str:
    if snapshot.backup_set.startswith("night of"):
        return f"{snapshot.backup_set} (no shadow set recorded)"
    return f"backup set {snapshot.backup_set} (night of {snapshot.night})"


def duration(snapshot: VssSnapshot) -> str:
    return "" if snapshot.duration_seconds is None else clock(snapshot.duration_seconds)


def render(report: Report, form: str) -> str:
    if form == "html":
        from operator_cli.present_html import page

        return page(report)
    return {"table": table, "csv": as_csv, "json": as_json}[form](report)


# -- table ------------------------------------------------------------------------------------
def table(report: Report) -> str:
    out = io.StringIO()
    out.write(
        f"VSS snapshots since {report.since:%Y-%m-%d %H:%M} UTC in {report.where()}\n"
        f"{headline(report)}\n"
    )
    if report.weaker:
        out.write(f"{len(report.weaker)} verified by the weaker rule: {WEAKER_NOTE}\n")
    if report.failures:
        out.write("\nFAILED\n")
        rows = [
            [s.snapshot_id, instance_label(s), f"{s.started:%Y-%m-%d %H:%M}", s.reason]
            for s in report.failures
        ]
        out.write(columns(["snapshot", "instance", "started (UTC)", "reason"], rows, indent=2))
    if report.reverify_failures:
        out.write("\nFAILED RE-VERIFICATION (every age)\n")
        rows = [
            [
                s.snapshot_id,
                instance_label(s),
                s.drive_letters or s.device or "-",
                f"{s.started:%Y-%m-%d %H:%M}",
                reverified(s),
                s.reverify_reason or "-",
            ]
            for s in report.failed_reverifications
        ]
        header = ["snapshot", "instance", "drives", "started (UTC)", "re-verified (UTC)", "reason"]
        out.write(columns(header, rows, indent=2))
        out.write(f"  {REVERIFY_NOTE}\n")
    for _, sets in report.groups():
        out.write(f"\n{instance_label(sets[0][1][0])}\n")
        for _, members in sets:
            out.write(f"  {set_label(members[0])}\n")
            rows = [
                [
                    s.snapshot_id,
                    s.device or "-",
                    s.drive_letters or "-",
                    f"{s.started:%Y-%m-%d %H:%M}",
                    s.status,
                    duration(s) or "-",
                    s.consistent_snapshot if s.status == tags.VERIFIED else "-",
                    rule_label(s) or "-",
                    _clip(s.volumes, 70) or "-",
                    _clip(s.reason, 60) or "-",
                    reverified(s) or "-",
                ]
                for s in members
            ]
            header = [
                "snapshot",
                "device",
                "drives",
                "started (UTC)",
                "verdict",
                "took",
                "consistent snapshot",
                "rule",
                "volumes",
                "reason",
                "re-verified (UTC)",
            ]
            out.write(columns(header, rows, indent=4))
    if not report.snapshots:
        out.write("\nno VSS snapshot in that time\n")
    out.write(storage_table(report))
    out.write(measured_table(report))
    return out.getvalue()


STORAGE_NOTE = (
    "estimate: one full copy per chain of incremental snapshots (a volume's size at most); "
    "the changes between snapshots come on top"
)


def storage_table(report: Report) -> str:
    if not report.storage:
        return ""
    rows = [
        [
            r.instance_id or "instance unknown",
            str(r.drives),
            str(r.backups),
            str(r.consistent),
            f"{r.provisioned_gib} GiB",
            f"{r.estimated_gib} GiB ({r.chains} chain(s))",
            f"${r.estimated_monthly_usd:,.2f}",
        ]
        for r in report.storage
    ]
    header = [
        "instance",
        "drives",
        "backups",
        "consistent",
        "volume sizes",
        "stored, from",
        "per month, from",
    ]
    return (
        f"\nSNAPSHOTS KEPT (every age): ${total_monthly(report.storage):,.2f} a month, from\n"
        + columns(header, rows, indent=2)
        + f"  {STORAGE_NOTE}; price: {PRICE_SOURCE}\n"
    )


MEASURED_NOTE = (
    "changed 512 KiB blocks (EBS direct APIs' ListChangedBlocks): each consistent snapshot "
    "against its source, each backup against the drive's backup before it; the first "
    "backup of each drive is a full copy, in the estimate above"
)


def measured_table(report: Report) -> str:
    if report.measured is None:
        return ""
    if not report.measured:
        return "\nMEASURED CHANGES: no pair of snapshots to compare\n"
    rows = [
        [
            r.instance_id or "instance unknown",
            str(r.pairs_measured),
            f"{r.consistent_gib:.2f} GiB",
            f"{r.backups_gib:.2f} GiB",
            f"${r.monthly_usd:,.2f}",
            str(len(r.unmeasured)),
        ]
        for r in report.measured
    ]
    header = ["instance", "pairs", "consistent vs source", "backups", "per month", "not measured"]
    lines = [
        f"  not measured: {r.instance_id} {u}\n" for r in report.measured for u in r.unmeasured
    ]
    return (
        f"\nMEASURED CHANGES: ${changed.total_monthly(report.measured):,.2f} a month\n"
        + columns(header, rows, indent=2)
        + "".join(lines)
        + f"  {MEASURED_NOTE}; price: {PRICE_SOURCE}\n"
    )


def columns(header: list[str], rows: list[list[str]], indent: int) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        " " * indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# -- csv and json -------------------------------------------------------------------------------
CSV_COLUMNS = [f.name for f in fields(VssSnapshot)]


def as_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for snapshot in report.snapshots:
        row = snapshot.as_dict()
        row["duration_seconds"] = (
            "" if snapshot.duration_seconds is None else f"{snapshot.duration_seconds:.0f}"
        )
        writer.writerow(row)
    return out.getvalue()


def as_json(report: Report) -> str:
    counts = report.counts()
    document: dict[str, Any] = {
        "region": report.region,
        "stack": report.source or None,
        "vss_tag": report.vss_tag,
        "since": report.since.isoformat(),
        "generated": report.generated.isoformat(),
        "summary": {
            **{verdict: counts[verdict] for verdict in VERDICTS},
            "reverify_failed": len(report.reverify_failures),
            "by_day": [
                {"day": day, **{verdict: c[verdict] for verdict in VERDICTS}}
                for day, c in report.by_day()
            ],
        },
        "storage": {
            "instances": [r.as_dict() for r in report.storage],
            "estimated_monthly_usd": total_monthly(report.storage),
            "model": STORAGE_NOTE,
            "price": PRICE_SOURCE,
            **(
                {}
                if report.measured is None
                else {
                    "measured": {
                        "instances": [r.as_dict() for r in report.measured],
                        "monthly_usd": changed.total_monthly(report.measured),
                        "model": MEASURED_NOTE,
                    }
                }
            ),
        },
        "failures": [s.snapshot_id for s in report.failures],
        "verified_by_weaker_rule": [s.snapshot_id for s in report.weaker],
        # Whatever their age: each with its verdict and its latest re-verification.
        "reverify_failures": [s.as_dict() for s in report.failed_reverifications],
        "instances": [
            {
                "instance_id": instance_id or None,
                "instance_name": sets[0][1][0].instance_name,
                "backup_sets": [
                    {
                        "backup_set": backup_set,
                        "night": members[0].night,
                        "snapshots": [s.as_dict() for s in members],
                    }
                    for backup_set, members in sets
                ],
            }
            for instance_id, sets in report.groups()
        ],
    }
    return json.dumps(document, indent=2) + "\n"
