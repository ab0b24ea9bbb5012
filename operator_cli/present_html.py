"""The report as one self-contained HTML page: no script, no external resource, mailable."""

from __future__ import annotations

from html import escape

from operator_cli import changed
from operator_cli.executions import took
from operator_cli.present import (
    MEASURED_NOTE,
    REVERIFY_NOTE,
    STORAGE_NOTE,
    VERDICTS,
    WEAKER_NOTE,
    Report,
    duration,
    headline,
    instance_label,
    reverified,
    set_label,
)
from operator_cli.snapshots import PENDING, VssSnapshot
from operator_cli.storage import PRICE_SOURCE, total_monthly
from vss_restore import tags

COLOURS = {tags.VERIFIED: "#1b7f3b", tags.FAILED: "#c62828", PENDING: "#b7791f"}
CHART_ROWS = 40  # the most recent restores; the table below lists every one
_TICKS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)

STYLE = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1f2328;margin:0;background:#f6f8fa}
main{max-width:1120px;margin:0 auto;padding:24px 28px 40px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;
 border-bottom:1px solid #d0d7de;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
h4{font-size:13px;margin:10px 0 4px;color:#57606a;font-weight:600}
.where{color:#57606a;margin:0 0 16px}
.tiles{display:flex;gap:12px;margin:12px 0}
.tile{flex:1;border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;
 border-left-width:6px}
.tile b{display:block;font-size:28px;line-height:1.1}
table{border-collapse:collapse;width:100%;margin:4px 0 8px;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:nowrap}
table.listing{table-layout:fixed}.nowrap{white-space:nowrap}
.verdict{font-weight:600}.verified{color:#1b7f3b}.failed{color:#c62828}.pending{color:#b7791f}
.failures td{background:#fff5f5}.reason{max-width:520px}
.ok{color:#1b7f3b;font-weight:600}
.rule{color:#57606a;font-size:12px;margin-top:2px}.weaker{color:#9a6700;font-weight:600}
.rule.failed{color:#c62828;font-weight:600}
ul.volumes{margin:2px 0 0;padding-left:16px;font-size:12px;color:#57606a}
.note{border-left:4px solid #9a6700;background:#fff8c5;padding:6px 10px}
footer{margin-top:28px;color:#57606a;font-size:12px}
"""


def page(report: Report) -> str:
    generated = f"{report.generated:%Y-%m-%d %H:%M} UTC"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>VSS restore report, {escape(report.region)}, {report.since:%Y-%m-%d} to "
        f"{report.generated:%Y-%m-%d}</title>",
        f"<style>{STYLE}</style></head><body><main>",
        "<h1>VSS restore report</h1>",
        f'<p class="where">{escape(report.where())} · snapshots since '
        f"{report.since:%Y-%m-%d %H:%M} UTC · generated {generated}</p>",
        *body(report),
        "<footer>Verdicts are the source snapshots' <code>vss-restore:*</code> tags; a restore "
        "takes as long as its Step Functions execution. Made by <code>vss-restore report "
        "--format html</code>.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def body(report: Report) -> list[str]:
    """The page's sections, each under an <h2>."""
    return [
        _tiles(report),
        _failures(report),
        _reverify_failures(report),
        _weaker(report),
        _per_day(report),
        _durations(report),
        _every_snapshot(report),
        _storage(report),
        _measured(report),
    ]


def _storage(report: Report) -> str:
    if not report.storage:
        return ""
    rows = "".join(
        f"<tr><td>{escape(r.instance_id or 'instance unknown')}</td><td>{r.drives}</td>"
        f"<td>{r.backups}</td><td>{r.consistent}</td><td>{r.provisioned_gib} GiB</td>"
        f"<td>{r.estimated_gib} GiB ({r.chains} chain(s))</td>"
        f"<td>${r.estimated_monthly_usd:,.2f}</td></tr>"
        for r in report.storage
    )
    return (
        f"<h2>Snapshots kept: ${total_monthly(report.storage):,.2f} a month, from</h2>"
        "<table><thead><tr><th>instance</th><th>drives</th><th>backups</th>"
        "<th>consistent</th><th>volume sizes</th><th>stored, from</th>"
        f"<th>per month, from</th></tr></thead><tbody>{rows}</tbody></table>"
        f"<p>{escape(STORAGE_NOTE)}; price: {escape(PRICE_SOURCE)}.</p>"
    )


def _measured(report: Report) -> str:
    if not report.measured:
        return ""
    rows = "".join(
        f"<tr><td>{escape(r.instance_id or 'instance unknown')}</td><td>{r.pairs_measured}</td>"
        f"<td>{r.consistent_gib:.2f} GiB</td><td>{r.backups_gib:.2f} GiB</td>"
        f"<td>${r.monthly_usd:,.2f}</td>"
        f"<td>{'<br>'.join(escape(str(u)) for u in r.unmeasured)}</td></tr>"
        for r in report.measured
    )
    return (
        f"<h2>Measured changes: ${changed.total_monthly(report.measured):,.2f} a month</h2>"
        "<table><thead><tr><th>instance</th><th>pairs</th><th>consistent vs source</th>"
        "<th>backups</th><th>per month</th><th>not measured</th></tr></thead>"
        f"<tbody>{rows}</tbody></table><p>{escape(MEASURED_NOTE)}.</p>"
    )


def _tiles(report: Report) -> str:
    counts = report.counts()
    tiles = "".join(
        f'<div class="tile" style="border-left-color:{COLOURS[v]}"><b class="{v}">{counts[v]}'
        f"</b>{v}</div>"
        for v in VERDICTS
    )
    tiles += reverify_tile(len(report.reverify_failures))
    return f'<div class="tiles" aria-label="{escape(headline(report))}">{tiles}</div>'


def reverify_tile(count: int) -> str:
    """How many verified snapshots failed their latest re-verification (red when any)."""
    colour = COLOURS[tags.FAILED] if count else "#d0d7de"
    number = f'<b class="{tags.FAILED}">{count}</b>' if count else f"<b>{count}</b>"
    return (
        f'<div class="tile reverify" style="border-left-color:{colour}">{number}'
        "re-verification failed</div>"
    )


def _reverify_failures(report: Report) -> str:
    """Absent when none: the tile says 0."""
    if not report.reverify_failures:
        return ""
    rows = "".join(
        "<tr>"
        f"<td><code>{escape(s.snapshot_id)}</code></td>"
        f"<td>{escape(instance_label(s))}</td>"
        f"<td>{escape(_drive(s))}</td>"
        f'<td class="nowrap">{s.started:%Y-%m-%d %H:%M}</td>'
        f'<td class="nowrap">{escape(_moment(s.reverified_at))}</td>'
        f'<td class="reason">{escape(s.reverify_reason)}</td>'
        "</tr>"
        for s in report.failed_reverifications
    )
    return (
        f"<h2>Failed re-verifications ({len(report.reverify_failures)})</h2>"
        f"<p>{escape(REVERIFY_NOTE[:1].upper() + REVERIFY_NOTE[1:])}.</p>"
        '<table class="failures"><thead><tr><th>snapshot</th><th>instance</th><th>drive</th>'
        "<th>started (UTC)</th><th>re-verified</th><th>reason</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _failures(report: Report) -> str:
    if not report.failures:
        return '<h2>Failures</h2><p class="ok">No restore failed.</p>'
    rows = "".join(
        "<tr>"
        f"<td><code>{escape(s.snapshot_id)}</code></td>"
        f"<td>{escape(instance_label(s))}</td>"
        f"<td>{escape(_drive(s))}</td>"
        f'<td class="nowrap">{s.started:%Y-%m-%d %H:%M}</td>'
        f'<td class="nowrap">{escape(_moment(s.checked_at))}</td>'
        f'<td class="reason">{escape(s.reason)}</td>'
        "</tr>"
        for s in report.failures
    )
    return (
        f"<h2>Failures ({len(report.failures)})</h2>"
        '<table class="failures"><thead><tr><th>snapshot</th><th>instance</th><th>drive</th>'
        "<th>started (UTC)</th><th>checked</th><th>reason</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _per_day(report: Report) -> str:
    days = report.by_day()
    if not days:
        return "<h2>Per day</h2><p>No VSS snapshot in that time.</p>"
    most = max(sum(c.values()) for _, c in days)
    rows = []
    for day, counts in days:
        cells = "".join(f'<td class="num {v}">{counts[v] or ""}</td>' for v in VERDICTS)
        rows.append(f"<tr><td>{day}</td>{cells}<td>{_stacked_bar(counts, most)}</td></tr>")
    heads = "".join(f'<th class="num">{v}</th>' for v in VERDICTS)
    return (
        "<h2>Per day</h2><table><thead><tr><th>day (snapshot taken, UTC)</th>"
        f'{heads}<th style="width:45%"></th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _stacked_bar(counts: dict[str, int], most: int) -> str:
    width, x = 360, 0.0
    rects = []
    for verdict in VERDICTS:
        w = width * counts.get(verdict, 0) / most
        if w:
            rects.append(
                f'<rect x="{x:.1f}" y="2" width="{w:.1f}" height="12" fill="{COLOURS[verdict]}">'
                f"<title>{counts[verdict]} {verdict}</title></rect>"
            )
        x += w
    return (
        f'<svg width="{width}" height="16" viewBox="0 0 {width} 16" role="img" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(rects)}</svg>'
    )


def _durations(report: Report) -> str:
    timed = sorted(
        (s for s in report.snapshots if s.duration_seconds is not None), key=lambda s: s.started
    )
    if not timed:
        return "<h2>Restore durations</h2><p>No restore has finished in that time.</p>"
    note = f" (the {CHART_ROWS} most recent)" if len(timed) > CHART_ROWS else ""
    return f"<h2>Restore durations{note}</h2>{duration_chart(timed[-CHART_ROWS:])}"


def duration_chart(timed: list[VssSnapshot]) -> str:
    """Horizontal bars, one per restore in the order the snapshots were taken (inline SVG)."""
    label_width, bar_width, row, top = 330, 600, 22, 8
    longest = max(s.duration_seconds or 0.0 for s in timed)
    step = next((t for t in _TICKS if longest / t <= 6), _TICKS[-1])
    scale_end = max(step, step * -(-longest // step))
    height = top + row * len(timed) + 30
    width = label_width + bar_width + 90
    out = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'xmlns="http://www.w3.org/2000/svg" font-family="-apple-system,Segoe UI,Roboto,Arial,'
        'sans-serif" font-size="12" aria-label="restore durations">'
    ]
    ticks = [step * i for i in range(int(scale_end // step) + 1)]
    axis_y = top + row * len(timed) + 4
    for tick in ticks:
        x = label_width + bar_width * tick / scale_end
        out.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="#d0d7de"/>'
            f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#57606a">'
            f"{_tick(tick)}</text>"
        )
    for index, snapshot in enumerate(timed):
        seconds = snapshot.duration_seconds or 0.0
        y = top + row * index
        w = max(1.0, bar_width * seconds / scale_end)
        colour = COLOURS[snapshot.status]
        label = f"{_short_instance(snapshot)} {_drive(snapshot)} · {snapshot.started:%m-%d %H:%M}"
        tip = f"{snapshot.snapshot_id} {snapshot.status} in {took(seconds)}" + (
            f": {snapshot.reason}" if snapshot.status == tags.FAILED else ""
        )
        out.append(
            f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{w:.1f}" height="14" rx="2" '
            f'fill="{colour}"><title>{escape(tip)}</title></rect>'
            f'<text x="{label_width + w + 6:.1f}" y="{y + 15}" fill="#57606a">'
            f"{escape(duration(snapshot))}</text>"
        )
    legend_x = label_width
    for verdict in (tags.VERIFIED, tags.FAILED):
        out.append(
            f'<rect x="{legend_x}" y="{height - 10}" width="10" height="10" '
            f'fill="{COLOURS[verdict]}"/><text x="{legend_x + 14}" y="{height - 1}">'
            f"{verdict}</text>"
        )
        legend_x += 80
    out.append("</svg>")
    return "".join(out)


def _tick(seconds: int) -> str:
    if seconds == 0:
        return "0"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def _every_snapshot(report: Report) -> str:
    out = ["<h2>Every VSS snapshot, by instance and backup set</h2>"]
    for _, sets in report.groups():
        out.append(f"<h3>{escape(instance_label(sets[0][1][0]))}</h3>")
        for _, members in sets:
            out.append(f"<h4>{escape(set_label(members[0]))}</h4>")
            rows = "".join(
                "<tr>"
                f"<td><code>{escape(s.snapshot_id)}</code></td>"
                f"<td>{escape(_drive(s))}</td>"
                f'<td class="nowrap">{s.started:%Y-%m-%d %H:%M}</td>'
                f'<td class="verdict {s.status}">{s.status}</td>'
                f'<td class="num">{escape(duration(s))}</td>'
                f"<td><code>{escape(s.consistent_snapshot if s.status == tags.VERIFIED else '')}"
                "</code></td>"
                f'<td class="reason">{escape(s.reason)}{_rule_and_volumes(s)}</td>'
                "</tr>"
                for s in members
            )
            out.append(
                f'<table class="listing">{_LISTING_COLUMNS}<thead><tr><th>snapshot</th>'
                "<th>drive</th><th>started (UTC)</th>"
                '<th>verdict</th><th class="num">took</th><th>consistent snapshot</th>'
                f"<th>reason</th></tr></thead><tbody>{rows}</tbody></table>"
            )
    return "".join(out)


_LISTING_COLUMNS = (
    '<colgroup><col style="width:190px"><col style="width:70px"><col style="width:130px">'
    '<col style="width:80px"><col style="width:70px"><col style="width:190px"><col></colgroup>'
)


def _weaker(report: Report) -> str:
    if not report.weaker:
        return ""
    listed = ", ".join(f"<code>{escape(s.snapshot_id)}</code>" for s in report.weaker)
    return (
        f'<p class="note"><b>{len(report.weaker)} verified by the weaker rule</b>: '
        f"{escape(WEAKER_NOTE)}: {listed}</p>"
    )


def _rule_and_volumes(snapshot: VssSnapshot) -> str:
    """Below the reason: the rule (the weaker one flagged) and each volume, as the tags say."""
    out = ""
    if snapshot.rule:
        weaker = " weaker" if snapshot.weaker_rule else ""
        note = f" — weaker: {WEAKER_NOTE}" if snapshot.weaker_rule else ""
        out += f'<div class="rule{weaker}">rule: {escape(snapshot.rule)}{escape(note)}</div>'
    if snapshot.volumes:
        items = "".join(f"<li>{escape(part)}</li>" for part in snapshot.volumes.split("; "))
        out += f'<ul class="volumes">{items}</ul>'
    if snapshot.reverify_result:
        failed = " failed" if snapshot.reverify_result == tags.FAILED else ""
        why = f": {snapshot.reverify_reason}" if failed and snapshot.reverify_reason else ""
        out += f'<div class="rule{failed}">re-verified {escape(reverified(snapshot) + why)}</div>'
    return out


def _moment(iso: str) -> str:
    """2026-11-26T00:04:18Z -> 2026-11-26 00:04 (as the other columns, UTC)."""
    return iso[:16].replace("T", " ")


def _drive(snapshot: VssSnapshot) -> str:
    if snapshot.drive_letters:
        return ", ".join(f"{letter}:" for letter in snapshot.drive_letters.split(","))
    return snapshot.device


def _short_instance(snapshot: VssSnapshot) -> str:
    return snapshot.instance_name or snapshot.instance_id or "?"
