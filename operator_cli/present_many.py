"""The report of many accounts and Regions: one report per place, merged, with the account
and the Region on every row; the HTML page grouped by account."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from html import escape
from itertools import groupby
from typing import Any

from operator_cli import present, present_html
from operator_cli.places import Unread
from operator_cli.snapshots import VssSnapshot
from operator_cli.storage import total_monthly


@dataclass(frozen=True)
class Place:
    profile: str  # "" for the default credentials
    report: present.Report  # its account and Region are the report's

    @property
    def label(self) -> str:
        profile = f" (profile {self.profile})" if self.profile else ""
        return f"account {self.report.account}, {self.report.region}{profile}"


@dataclass(frozen=True)
class ManyReport:
    since: datetime
    generated: datetime
    places: list[Place]  # sorted by account, then Region
    unread: list[Unread]

    @property
    def snapshots(self) -> list[VssSnapshot]:
        return [s for place in self.places for s in place.report.snapshots]

    def counts(self) -> Counter[str]:
        return Counter(s.status for s in self.snapshots)

    def failures(self) -> list[tuple[Place, VssSnapshot]]:
        found = [(place, s) for place in self.places for s in place.report.failures]
        return sorted(
            found, key=lambda f: f[1].checked_at or f[1].started.isoformat(), reverse=True
        )

    def reverify_failures(self) -> list[tuple[Place, VssSnapshot]]:
        return [(place, s) for place in self.places for s in place.report.failed_reverifications]

    def scope(self) -> str:
        accounts = {place.report.account for place in self.places}
        regions = {place.report.region for place in self.places}
        return f"{_count(len(accounts), 'account')}, {_count(len(regions), 'Region')}"


def merged(
    since: datetime, generated: datetime, places: list[Place], unread: list[Unread]
) -> ManyReport:
    ordered = sorted(places, key=lambda p: (p.report.account, p.report.region, p.profile))
    return ManyReport(since, generated, ordered, unread)


def headline(many: ManyReport) -> str:
    counts = many.counts()
    total = len(many.snapshots)
    noun = "snapshot" if total == 1 else "snapshots"
    verdicts = ", ".join(f"{counts[v]} {v}" for v in present.VERDICTS)
    failed = len(many.reverify_failures())
    if failed:
        verdicts += f"; {failed} FAILED RE-VERIFICATION" + ("S" if failed > 1 else "")
    unread = f"; {_count(len(many.unread), 'place')} NOT READ" if many.unread else ""
    return f"{total} VSS {noun} in {many.scope()}: {verdicts}{unread}"


def render(many: ManyReport, form: str) -> str:
    return {"table": table, "csv": as_csv, "json": as_json, "html": page}[form](many)


def table(many: ManyReport) -> str:
    out = io.StringIO()
    out.write(f"VSS snapshots since {many.since:%Y-%m-%d %H:%M} UTC\n{headline(many)}\n")
    if many.unread:
        out.write("\nNOT READ\n")
        out.writelines(f"  {u.place}: {u.reason}\n" for u in many.unread)
    failures = many.failures()
    if failures:
        out.write("\nFAILED, every account\n")
        rows = [
            [
                p.report.account,
                p.report.region,
                s.snapshot_id,
                present.instance_label(s),
                f"{s.started:%Y-%m-%d %H:%M}",
                s.reason,
            ]
            for p, s in failures
        ]
        header = ["account", "Region", "snapshot", "instance", "started (UTC)", "reason"]
        out.write(present.columns(header, rows, indent=2))
    for place in many.places:
        out.write(f"\n=== {place.label} ===\n")
        out.write(present.table(place.report))
    return out.getvalue()


CSV_COLUMNS = ["account_id", "region", *present.CSV_COLUMNS]


def as_csv(many: ManyReport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for place in many.places:
        for row in csv.DictReader(io.StringIO(present.as_csv(place.report))):
            writer.writerow(
                {"account_id": place.report.account, "region": place.report.region, **row}
            )
    return out.getvalue()


def as_json(many: ManyReport) -> str:
    counts = many.counts()
    document: dict[str, Any] = {
        "since": many.since.isoformat(),
        "generated": many.generated.isoformat(),
        "summary": {
            **{verdict: counts[verdict] for verdict in present.VERDICTS},
            "reverify_failed": len(many.reverify_failures()),
        },
        "estimated_monthly_usd": round(
            sum(total_monthly(p.report.storage) for p in many.places), 2
        ),
        "not_read": [{"place": u.place, "reason": u.reason} for u in many.unread],
        "places": [
            {
                "account_id": place.report.account,
                "profile": place.profile or None,
                **json.loads(present.as_json(place.report)),
            }
            for place in many.places
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def page(many: ManyReport) -> str:
    counts = many.counts()
    tiles = "".join(
        f'<div class="tile" style="border-left-color:{present_html.COLOURS[v]}">'
        f'<b class="{v}">{counts[v]}</b>{v}</div>'
        for v in present.VERDICTS
    )
    tiles += present_html.reverify_tile(len(many.reverify_failures()))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>VSS restore report, {escape(many.scope())}, {many.since:%Y-%m-%d} to "
        f"{many.generated:%Y-%m-%d}</title>",
        f"<style>{present_html.STYLE}</style></head><body><main>",
        "<h1>VSS restore report</h1>",
        f'<p class="where">{escape(many.scope())} · snapshots since '
        f"{many.since:%Y-%m-%d %H:%M} UTC · generated {many.generated:%Y-%m-%d %H:%M} UTC</p>",
        f'<div class="tiles" aria-label="{escape(headline(many))}">{tiles}</div>',
        _unread(many),
    ]
    for account, places in groupby(many.places, key=lambda p: p.report.account):
        parts.append(f'<section class="account"><h2>Account {escape(account)}</h2>')
        for place in places:
            profile = f" · profile {escape(place.profile)}" if place.profile else ""
            parts.append(
                f'<section class="place"><h3>{escape(place.report.region)}{profile}</h3>'
                f'<p class="where">{escape(place.report.where())}</p>'
            )
            # Each place's sections one level down: under its account and Region.
            parts.extend(_demoted(part) for part in present_html.body(place.report))
            parts.append("</section>")
        parts.append("</section>")
    parts += [
        "<footer>Verdicts are the source snapshots' <code>vss-restore:*</code> tags, read in "
        "each account and Region with its own credentials. Made by <code>vss-restore report "
        "--profiles ... --regions ... --format html</code>.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _unread(many: ManyReport) -> str:
    if not many.unread:
        return ""
    items = "".join(f"<li><b>{escape(u.place)}</b>: {escape(u.reason)}</li>" for u in many.unread)
    return f'<h2 class="failed">Not read ({len(many.unread)})</h2><ul>{items}</ul>'


def _demoted(html: str) -> str:
    """Our own headings only: every text in the parts is escaped, so no "<h2>" is data."""
    return (
        html.replace("<h3>", "<h5>")
        .replace("</h3>", "</h5>")
        .replace("<h2>", "<h4>")
        .replace("</h2>", "</h4>")
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
