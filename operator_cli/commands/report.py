"""`vss-restore report [--since 7d] [--format table|csv|json|html]`: every verdict."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from operator_cli import present, snapshots, storage
from operator_cli.account import Account
from operator_cli.durations import parse_since
from operator_cli.errors import OK, OperatorError


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "report",
        parents=[common],
        help="every VSS snapshot with its verdict, grouped by instance and backup set",
        description="Every VSS snapshot taken since --since with its verdict, the restore's "
        "duration, the consistent snapshot and the failure reason, grouped by instance and by "
        "backup set; failures first.",
        epilog="""examples:
  vss-restore report                                  the last 7 days, as a table
  vss-restore report --since 2026-11-20 --format csv  since a UTC date, for a spreadsheet
  vss-restore report --format html -o report.html     a page to mail or publish""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--since",
        default="7d",
        help="snapshots started since: 7d, 36h, or a UTC date 2026-11-20 (default 7d)",
    )
    parser.add_argument("--format", choices=present.FORMATS, default="table")
    parser.add_argument(
        "--output", "-o", metavar="FILE", help="write the report here instead of stdout"
    )


def run(args: argparse.Namespace, account: Account, out: TextIO) -> int:
    now = datetime.now(UTC)
    try:
        cutoff = parse_since(args.since, now)
    except argparse.ArgumentTypeError as exc:
        raise OperatorError(f"--since: {exc}") from None
    report = present.Report(
        region=account.region,
        source=account.where.stack if not account.where.state_machine_arn else "",
        vss_tag=account.vss_tag,
        since=cutoff,
        generated=now,
        snapshots=snapshots.since(account, cutoff),
        storage=storage.kept(account),
    )
    text = present.render(report, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        out.write(f"wrote {args.output}: {present.headline(report)}\n")
    else:
        out.write(text)
    return OK
