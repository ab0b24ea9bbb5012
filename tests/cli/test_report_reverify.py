"""What the weekly re-verification found, where an operator looks: `vss-restore report` (table,
csv, json, html) and `vss-restore status`, on a simulated account where one re-verification
passed and one failed (a KMS key disabled after the night's verdict)."""

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from operator_cli import present_many
from operator_cli.account import Account
from operator_cli.cli import parser, where
from operator_cli.commands import report as report_command
from simulator import Simulation, load
from tests.cli.harness import operating, pointed_at, vss_restore
from vss_restore import tags

DRIVE = [{"alias": "C", "device": "/dev/sda1", "size": 30, "drive_letters": ["C"], "system": True}]
SCENARIO = {
    "name": "operator-reverify",
    "description": "Two nights of web1's D: (under a customer managed key) and web2's D: "
    "(unencrypted), each verified the night it is taken. On day 3 the operator disables "
    "web1's key; then the weekly re-verification restores again each instance's older "
    "verified backup (night 1): web1's fails (KeyNotUsable), web2's passes.",
    "start": "2026-11-01T00:00:00Z",
    "parameters": {"HelperMode": "named", "HelperInstanceIds": "${instance:helper}"},
    "instances": {
        "web1": {
            "volumes": [
                *DRIVE,
                {
                    "alias": "D",
                    "device": "xvdb",
                    "size": 50,
                    "drive_letters": ["D"],
                    "encryption": "customer-key",
                },
            ]
        },
        "web2": {
            "volumes": [
                *DRIVE,
                {"alias": "D", "device": "xvdb", "size": 50, "drive_letters": ["D"]},
            ]
        },
        "web3": {
            "volumes": [
                *DRIVE,
                {"alias": "D", "device": "xvdb", "size": 50, "drive_letters": ["D"]},
            ]
        },
        "helper": {"helper": True},
    },
    "steps": [
        {"at": 3600, "backup": "web1", "name": "night1", "volumes": ["D"]},
        {"backup": "web2", "name": "web2-night1", "volumes": ["D"]},
        {"at": 90000, "backup": "web1", "name": "night2", "volumes": ["D"]},
        {"backup": "web2", "name": "web2-night2", "volumes": ["D"]},
        {"at": 172800, "disable_key": "web1.D"},
        {"run_schedule": "StartReverificationsFunction"},
        # Taken, announced by no event: no verdict yet (nothing to re-verify).
        {"backup": "web3", "name": "web3-night3", "volumes": ["D"], "events": "none"},
    ],
    "expect": {
        "snapshots": {
            alias: {"verdict": "verified"}
            for alias in ("night1.D", "night2.D", "web2-night1.D", "web2-night2.D")
        },
        "alerts": 1,
    },
}
SINCE = ("--since", "2026-11-01")
FAILED, PASSED, UNTOUCHED, PENDING = "night1.D", "web2-night1.D", "night2.D", "web3-night3.D"
KEY = "KeyNotUsable"


@pytest.fixture(scope="module")
def account() -> Iterator[Simulation]:
    with Simulation(load(SCENARIO)) as simulation:
        report = simulation.run()
        assert report.ok, report.failures
        yield simulation


def snap(simulation: Simulation, alias: str) -> str:
    return simulation.aliases.snapshots[alias]


def report(simulation: Simulation, *argv: str) -> str:
    said = vss_restore("report", *argv, *pointed_at(simulation))
    assert said.code == 0, said.err
    return said.out


def test_the_table_lists_the_failed_reverification_with_its_reason(account: Simulation) -> None:
    out = report(account, *SINCE)

    assert "5 VSS snapshots: 4 verified, 0 failed, 1 pending; 1 FAILED RE-VERIFICATION\n" in out
    assert "\nFAILED\n" not in out  # every verdict stands
    section = out.split("\nFAILED RE-VERIFICATION (every age)\n", 1)[1].split("\n\n", 1)[0]
    (row,) = [line for line in section.splitlines() if line.startswith("  snap-")]
    assert row.startswith(f"  {snap(account, FAILED)}  {account.aliases.instances['web1']}")
    assert re.search(r"  failed 2026-11-03 \d\d:\d\d  KeyNotUsable.*Disabled", row), row
    assert snap(account, PASSED) not in section


def test_each_row_of_the_table_says_its_latest_reverification(account: Simulation) -> None:
    out = report(account, *SINCE)

    listing = out.split("\nFAILED RE-VERIFICATION", 1)[1].split("\n\n", 1)[1]
    assert listing.splitlines()[2].rstrip().endswith("re-verified (UTC)")

    def row(alias: str) -> str:
        (found,) = [
            line for line in listing.splitlines() if line.startswith(f"    {snap(account, alias)}")
        ]
        return found

    assert re.search(r"  failed 2026-11-03 \d\d:\d\d$", row(FAILED))
    assert re.search(r"  verified 2026-11-03 \d\d:\d\d$", row(PASSED))
    assert row(UNTOUCHED).endswith("  -")


def test_the_section_lists_a_failed_reverification_older_than_since(account: Simulation) -> None:
    out = report(account, "--since", "2026-11-02")

    assert "3 VSS snapshots: 2 verified, 0 failed, 1 pending; 1 FAILED RE-VERIFICATION\n" in out
    section, listing = out.split("\nFAILED RE-VERIFICATION (every age)\n", 1)[1].split("\n\n", 1)
    assert snap(account, FAILED) in section
    assert snap(account, FAILED) not in listing  # taken before --since: not in the listing


def test_csv_carries_each_snapshots_latest_reverification(account: Simulation) -> None:
    rows = {
        row["snapshot_id"]: row
        for row in csv.DictReader(io.StringIO(report(account, *SINCE, "--format", "csv")))
    }

    failed, passed, untouched = (rows[snap(account, a)] for a in (FAILED, PASSED, UNTOUCHED))
    assert (failed["status"], failed["reverify_result"]) == (tags.VERIFIED, tags.FAILED)
    assert failed["reverify_reason"].startswith(KEY)
    assert failed["reverified_at"].startswith("2026-11-03T")
    assert failed["reverified_at"] > failed["checked_at"]
    assert ":reverify-" in failed["reverify_execution"]
    assert failed["execution"] != failed["reverify_execution"]  # the night's verdict stands
    assert (passed["reverify_result"], passed["reverify_reason"][:0]) == (tags.VERIFIED, "")
    assert ":reverify-" in passed["reverify_execution"]
    assert [untouched[k] for k in ("reverified_at", "reverify_result", "reverify_reason")] == [
        "",
        "",
        "",
    ]


def test_json_counts_and_lists_the_failed_reverifications(account: Simulation) -> None:
    document = json.loads(report(account, *SINCE, "--format", "json"))

    assert document["summary"]["reverify_failed"] == 1
    (failed,) = document["reverify_failures"]
    assert failed["snapshot_id"] == snap(account, FAILED)
    assert failed["status"] == tags.VERIFIED
    assert failed["reverify_result"] == tags.FAILED
    assert KEY in failed["reverify_reason"]
    rows: dict[str, dict[str, Any]] = {
        s["snapshot_id"]: s
        for instance in document["instances"]
        for backup_set in instance["backup_sets"]
        for s in backup_set["snapshots"]
    }
    assert rows[snap(account, PASSED)]["reverify_result"] == tags.VERIFIED
    assert rows[snap(account, UNTOUCHED)]["reverify_result"] == ""


def test_html_has_a_tile_and_a_section_for_the_failed_reverification(
    account: Simulation, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"

    out = report(account, *SINCE, "--format", "html", "--output", str(page))

    assert out == (
        f"wrote {page}: 5 VSS snapshots: 4 verified, 0 failed, 1 pending; "
        "1 FAILED RE-VERIFICATION\n"
    )
    html = page.read_text()
    assert re.search(
        r'<div class="tile reverify"[^>]*><b class="failed">1</b>re-verification', html
    )
    assert html.index("<h2>Failures</h2>") < html.index("<h2>Failed re-verifications (1)</h2>")
    section = html.split("<h2>Failed re-verifications (1)</h2>", 1)[1].split("<h2>", 1)[0]
    assert f"<code>{snap(account, FAILED)}</code>" in section
    assert snap(account, PASSED) not in section
    assert KEY in section
    every = html.split("<h2>Every VSS snapshot", 1)[1]
    row = every.split(f"<code>{snap(account, FAILED)}</code>", 1)[1].split("</tr>", 1)[0]
    assert re.search(
        r'<div class="rule failed">re-verified failed 2026-11-03 [^<]*KeyNotUsable', row
    )
    row = every.split(f"<code>{snap(account, PASSED)}</code>", 1)[1].split("</tr>", 1)[0]
    assert re.search(r'<div class="rule">re-verified verified 2026-11-03 \d\d:\d\d</div>', row)


def test_many_places_count_every_places_failed_reverifications(account: Simulation) -> None:
    # Two places read as `report --profiles/--regions` reads each (one account simulated:
    # its report twice, as a second Region with the same findings would give).
    args = parser().parse_args(["report", *pointed_at(account)])
    read = Account(where(args, {}))
    since, now = datetime(2026, 11, 1, tzinfo=UTC), datetime.now(UTC)
    places = [
        present_many.Place(profile, report_command._report(read, since, now, many=True))
        for profile in ("a", "b")
    ]
    many = present_many.merged(since, now, places, [])

    assert present_many.headline(many).endswith("; 2 FAILED RE-VERIFICATIONS")
    assert json.loads(present_many.as_json(many))["summary"]["reverify_failed"] == 2
    html = present_many.page(many)
    assert re.search(r'<div class="tile reverify"[^>]*><b class="failed">2</b>', html)
    assert html.count("<h4>Failed re-verifications (1)</h4>") == 2  # one per place
    assert present_many.table(many).count("\nFAILED RE-VERIFICATION (every age)\n") == 2


@pytest.mark.parametrize(
    ("alias", "code", "says"),
    [
        (FAILED, 1, "re-verified: failed at 2026-11-03T"),
        (PASSED, 0, "re-verified: verified at 2026-11-03T"),
        (UNTOUCHED, 0, "verdict:   verified at 2026-11-02T"),
    ],
)
def test_status_exits_1_when_the_reverification_after_the_verdict_failed(
    account: Simulation, alias: str, code: int, says: str
) -> None:
    said = vss_restore("status", snap(account, alias), *pointed_at(account))

    assert said.code == code, said.out + said.err
    assert says in said.out
    assert (
        "NOT OK: verified the night it was taken, but its latest re-verification failed"
        in (said.out)
    ) == (code == 1)
    assert ("re-verified:" in said.out) == (alias != UNTOUCHED)


def test_status_json_carries_the_reverification(account: Simulation) -> None:
    said = vss_restore("status", snap(account, FAILED), "--json", *pointed_at(account))

    assert said.code == 1
    found = json.loads(said.out)
    assert (found["verdict"], found["ok"], found["reverification_failed"]) == (
        tags.VERIFIED,
        False,
        True,
    )
    assert found["reverification"]["result"] == tags.FAILED
    assert found["reverification"]["reason"].startswith(KEY)
    assert ":reverify-" in found["reverification"]["execution"]

    said = vss_restore("status", snap(account, UNTOUCHED), "--json", *pointed_at(account))
    assert said.code == 0
    found = json.loads(said.out)
    assert (found["reverification"], found["reverification_failed"]) == (None, False)


def test_start_reverify_refuses_a_snapshot_without_a_verdict(account: Simulation) -> None:
    said = vss_restore("start", snap(account, PENDING), "--reverify", *pointed_at(account))

    assert (said.code, said.out) == (2, "")
    assert said.err == (
        f"vss-restore: {snap(account, PENDING)} is not verified (no verdict yet): there is "
        "nothing to re-verify; restore it without --reverify\n"
    )


# Last: it changes the account (the key enabled again, night 1 of web1 re-verified).
def test_once_the_key_is_enabled_again_a_reverification_clears_the_failure(
    account: Simulation,
) -> None:
    failed = snap(account, FAILED)
    with operating(account):
        kms: Any = boto3.client("kms", region_name=account.world.region)
        ec2: Any = boto3.client("ec2", region_name=account.world.region)
        key = ec2.describe_snapshots(SnapshotIds=[failed])["Snapshots"][0]["KmsKeyId"]
        kms.enable_key(KeyId=key.rsplit("/", 1)[1])

        said = vss_restore("start", failed, "--reverify", "--follow", *pointed_at(account))

    assert said.code == 0, said.out + said.err
    assert f"re-verification: {failed} verified\n" in said.out
    status = vss_restore("status", failed, "--json", *pointed_at(account))
    assert status.code == 0, status.out
    found = json.loads(status.out)
    assert (found["reverification"]["result"], found["reverification_failed"]) == (
        tags.VERIFIED,
        False,
    )
    assert ":on-demand-reverify-" in found["reverification"]["execution"]
    out = report(account, *SINCE)
    assert re.search(r"\n\d VSS snapshots: \d verified, 0 failed, \d pending\n", out)
    assert "RE-VERIFICATION" not in out
