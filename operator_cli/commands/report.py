"""`vss-restore report [--since 7d] [--format table|csv|json|html]`: every verdict."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from operator_cli import changed, places, present, present_many, snapshots, storage
from operator_cli.account import Account
from operator_cli.durations import parse_since
from operator_cli.errors import NOT_VERIFIED, OK, OperatorError


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
  vss-restore report --format html -o report.html     a page to mail or publish
  vss-restore report --storage                        measure each kept snapshot's changed
                                                      data (EBS direct APIs: needs
                                                      ebs:ListChangedBlocks)
  vss-restore report --profiles prod,test --regions eu-west-1,us-east-1
                                                      every account and Region, merged
exit status: 0, or 1 when a place of --profiles/--regions could not be read""",
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
    parser.add_argument(
        "--storage",
        action="store_true",
        help="measure what the kept snapshots store with EBS direct APIs' ListChangedBlocks "
        "(one place only)",
    )
    parser.add_argument(
        "--storage-calls",
        type=_calls,
        default=changed.MAX_CALLS,
        metavar="N",
        help=f"with --storage: at most N ListChangedBlocks calls (default {changed.MAX_CALLS})",
    )
    places.add_options(parser)


def _calls(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of calls from 1 to 10000")
    return int(text)


def run(args: argparse.Namespace, account: Account, out: TextIO) -> int:
    now = datetime.now(UTC)
    try:
        cutoff = parse_since(args.since, now)
    except argparse.ArgumentTypeError as exc:
        raise OperatorError(f"--since: {exc}") from None
    if places.wanted(args):
        if args.storage:
            raise OperatorError("--storage measures one place: not with --profiles/--regions")
        return _many(args, account, cutoff, now, out)
    report = _report(account, cutoff, now, calls=args.storage_calls if args.storage else 0)
    _write(args, present.render(report, args.format), present.headline(report), out)
    return OK


def _report(
    account: Account, cutoff: datetime, now: datetime, many: bool = False, calls: int = 0
) -> present.Report:
    """`calls`: measure the changed data with at most that many ListChangedBlocks calls."""
    backups, consistent = storage.listed(account)
    return present.Report(
        region=account.region,
        source=account.where.stack if not account.where.state_machine_arn else "",
        vss_tag=account.vss_tag,
        since=cutoff,
        generated=now,
        snapshots=snapshots.since(account, cutoff),
        storage=storage.summarize(backups, consistent),
        account=account.account_id if many else "",
        measured=changed.measure(account.ebs, backups, consistent, calls) if calls else None,
        reverify_failures=snapshots.reverify_failures(account),
    )


def _many(
    args: argparse.Namespace, account: Account, cutoff: datetime, now: datetime, out: TextIO
) -> int:
    wanted = places.expand(account.where, args.profiles, args.regions)
    done, unread = places.read_each(wanted, lambda a: _report(a, cutoff, now, many=True))
    if not done:
        reasons = "; ".join(f"{u.place}: {u.reason}" for u in unread)
        raise OperatorError(f"no place could be read: {reasons}")
    found = [present_many.Place(a.where.profile or "", report) for a, report in done]
    many = present_many.merged(cutoff, now, found, unread)
    _write(args, present_many.render(many, args.format), present_many.headline(many), out)
    return NOT_VERIFIED if unread else OK


def _write(args: argparse.Namespace, text: str, headline: str, out: TextIO) -> None:
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        out.write(f"wrote {args.output}: {headline}\n")
    else:
        out.write(text)
