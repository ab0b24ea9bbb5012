"""`vss-restore report` and `status` over two simulated nights of restores."""

import csv
import io
import json
import os
import re
import struct
from pathlib import Path
from typing import Any

import boto3
import pytest

from simulator import Simulation
from tests.cli import chromium
from tests.cli.harness import pointed_at, vss_restore
from vss_restore import tags

SINCE = ("--since", "2026-11-20")
VSS = ["night1.C", "night1.D", "aws.C", "sql1-night2.D", "sql1-night2.E", "web1-night2.D"]
REFUSED = "VSS_E_VOLUME_IN_USE"


def ids(simulation: Simulation, *aliases: str) -> list[str]:
    return [simulation.aliases.snapshots[alias] for alias in aliases]


def consistent_of(simulation: Simulation, alias: str) -> str:
    """The snapshot the workflow made of `alias`, found by the tag it puts on it."""
    ec2 = boto3.client("ec2", region_name=simulation.world.region)
    source = simulation.aliases.snapshots[alias]
    (made,) = ec2.describe_snapshots(
        Filters=[{"Name": f"tag:{tags.SOURCE_SNAPSHOT}", "Values": [source]}]
    )["Snapshots"]
    return str(made["SnapshotId"])


def test_report_table_lists_failures_first_then_each_instance_and_backup_set(
    two_nights: Simulation,
) -> None:
    said = vss_restore("report", *SINCE, *pointed_at(two_nights))

    assert said.code == 0, said.err
    assert "6 VSS snapshots: 4 verified, 1 failed, 1 pending" in said.out
    failures, listing = said.out.split("\nFAILED\n", 1)[1].split("\n\n", 1)
    (failed,) = ids(two_nights, "sql1-night2.D")
    assert failed in failures
    assert REFUSED in failures
    # Every VSS snapshot once, under its instance; not the plain snapshot, not our own output.
    rows = [line.split()[0] for line in listing.splitlines() if line.startswith("    snap-")]
    assert sorted(rows) == sorted(ids(two_nights, *VSS))
    web1 = f"{two_nights.aliases.instances['web1']} (web1)"
    web1_part = listing.split(web1 + "\n", 1)[1].split("\n\n", 1)[0]
    assert sorted(line.split()[0] for line in web1_part.splitlines() if "snap-" in line) == (
        sorted(ids(two_nights, "night1.C", "night1.D", "web1-night2.D"))
    )
    assert web1_part.count("  backup set {") == 2  # night 1 and night 2, each its shadow set


def test_report_table_gives_each_restore_its_rule_and_volumes_and_counts_the_weaker(
    two_nights: Simulation,
) -> None:
    said = vss_restore("report", *SINCE, *pointed_at(two_nights))

    assert said.code == 0, said.err
    assert "\n1 verified by the weaker rule: the newest-copy rule" in said.out
    (weaker,) = ids(two_nights, "sql1-night2.E")
    (row,) = [line for line in said.out.splitlines() if line.startswith(f"    {weaker}")]
    assert re.search(r"  newest-on-each-volume \(weaker\) +E: newest copy, NoErrorsFound  ", row)
    (recorded,) = ids(two_nights, "night1.D")
    (row,) = [line for line in said.out.splitlines() if line.startswith(f"    {recorded}")]
    assert re.search(r"  recorded-shadow-copy-id +D: recorded copy, NoErrorsFound  ", row)


def test_report_csv_has_one_row_per_vss_snapshot_with_verdict_duration_and_reason(
    two_nights: Simulation,
) -> None:
    said = vss_restore("report", *SINCE, "--format", "csv", *pointed_at(two_nights))

    assert said.code == 0, said.err
    rows = {row["snapshot_id"]: row for row in csv.DictReader(io.StringIO(said.out))}
    assert sorted(rows) == sorted(ids(two_nights, *VSS))
    by_alias = {alias: rows[two_nights.aliases.snapshots[alias]] for alias in VSS}
    assert {a: r["status"] for a, r in by_alias.items()} == {
        "night1.C": "verified",
        "night1.D": "verified",
        "aws.C": "verified",
        "sql1-night2.D": "failed",
        "sql1-night2.E": "verified",
        "web1-night2.D": "pending",
    }
    assert by_alias["night1.C"]["consistent_snapshot"] == consistent_of(two_nights, "night1.C")
    assert by_alias["aws.C"]["consistent_snapshot"] == two_nights.aliases.snapshots["aws.C"]
    assert REFUSED in by_alias["sql1-night2.D"]["reason"]
    assert int(by_alias["night1.D"]["duration_seconds"]) > 60
    assert by_alias["web1-night2.D"]["duration_seconds"] == ""
    assert by_alias["web1-night2.D"]["execution"] == ""
    assert {a: r["rule"] for a, r in by_alias.items()} == {
        "night1.C": "recorded-shadow-copy-id",
        "night1.D": "recorded-shadow-copy-id",
        "aws.C": "verify-only",
        "sql1-night2.D": "newest-on-each-volume",  # planned; Windows refused the revert
        "sql1-night2.E": "newest-on-each-volume",
        "web1-night2.D": "",
    }
    assert by_alias["sql1-night2.D"]["volumes"] == "D: NOT reverted"
    assert by_alias["aws.C"]["volumes"] == (
        "partition 1 verify-only, not scanned (FAT32); partition 3 verify-only, NoErrorsFound"
    )


def test_report_json_summarises_per_day_and_groups_by_instance_and_backup_set(
    two_nights: Simulation,
) -> None:
    said = vss_restore("report", *SINCE, "--format", "json", *pointed_at(two_nights))

    assert said.code == 0, said.err
    report = json.loads(said.out)
    summary = report["summary"]
    assert (summary["verified"], summary["failed"], summary["pending"]) == (4, 1, 1)
    assert summary["by_day"] == [
        {"day": "2026-11-24", "verified": 1, "failed": 0, "pending": 0},  # aws.C, 23:40
        {"day": "2026-11-25", "verified": 2, "failed": 0, "pending": 0},
        {"day": "2026-11-26", "verified": 1, "failed": 1, "pending": 1},
    ]
    assert report["failures"] == ids(two_nights, "sql1-night2.D")
    instances = {i["instance_name"]: i for i in report["instances"]}
    assert sorted(instances) == ["sql1", "web1"]
    sql1_sets = {s["backup_set"]: s for s in instances["sql1"]["backup_sets"]}
    # AWS's VSS snapshot has no backup tags: its instance is the one its volume is attached
    # to, its backup set the night it was taken.
    assert (
        sql1_sets["night of 2026-11-24"]["snapshots"][0]["snapshot_id"]
        == ids(two_nights, "aws.C")[0]
    )
    # sql1's second backup recorded no shadow copy or set IDs: grouped by its night too.
    assert [s["snapshot_id"] for s in sql1_sets["night of 2026-11-25"]["snapshots"]] == ids(
        two_nights, "sql1-night2.D", "sql1-night2.E"
    )


def test_report_since_leaves_out_older_snapshots(two_nights: Simulation) -> None:
    said = vss_restore(
        "report", "--since", "2026-11-25T12:00", "--format", "csv", *pointed_at(two_nights)
    )

    rows = list(csv.DictReader(io.StringIO(said.out)))
    assert sorted(r["snapshot_id"] for r in rows) == sorted(
        ids(two_nights, "sql1-night2.D", "sql1-night2.E", "web1-night2.D")
    )


def test_report_html_is_one_self_contained_page_with_failures_first(
    two_nights: Simulation, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"

    said = vss_restore(
        "report", *SINCE, "--format", "html", "--output", str(page), *pointed_at(two_nights)
    )

    assert said.code == 0, said.err
    assert said.out == f"wrote {page}: 6 VSS snapshots: 4 verified, 1 failed, 1 pending\n"
    html = page.read_text()
    assert "<script" not in html.lower()
    # Nothing to fetch: the only URL is the SVG namespace, which is a name, not a request.
    assert set(re.findall(r"https?://[^\"' )]+", html)) == {"http://www.w3.org/2000/svg"}
    assert not re.search(r"(src|href)=", html)
    assert html.index("<h2>Failures (1)</h2>") < html.index("<h2>Per day</h2>")
    assert html.index("<h2>Per day</h2>") < html.index("<h2>Restore durations")
    assert html.index("<h2>Restore durations") < html.index("<h2>Every VSS snapshot")
    failures = html.split("<h2>Failures (1)</h2>", 1)[1].split("<h2>", 1)[0]
    assert ids(two_nights, "sql1-night2.D")[0] in failures
    assert REFUSED in failures
    chart = html.split("<h2>Restore durations", 1)[1].split("</svg>", 1)[0]
    assert chart.count("<title>") == 5  # one bar per finished restore
    for snapshot_id in ids(two_nights, *VSS):
        assert snapshot_id in html
    # The rule of each restore, the weaker one flagged, and each volume.
    (weaker,) = ids(two_nights, "sql1-night2.E")
    note = html.split('<p class="note">', 1)[1].split("</p>", 1)[0]
    assert note.startswith("<b>1 verified by the weaker rule</b>: the newest-copy rule")
    assert weaker in note
    row = html.split(f"<code>{weaker}</code>", 2)[2].split("</tr>", 1)[0]
    assert '<div class="rule weaker">rule: newest-on-each-volume — weaker:' in row
    assert '<ul class="volumes"><li>E: newest copy, NoErrorsFound</li></ul>' in row
    (system,) = ids(two_nights, "night1.C")
    row = html.split(f"<code>{system}</code>", 1)[1].split("</tr>", 1)[0]
    assert '<div class="rule">rule: recorded-shadow-copy-id</div>' in row
    assert (
        "<li>partition 1 not in backup, not scanned (FAT32)</li>"
        "<li>C: recorded copy, NoErrorsFound</li>"
    ) in row


def test_the_html_report_renders_in_headless_chromium(
    two_nights: Simulation, tmp_path: Path
) -> None:
    binary = chromium.find()
    # CI installs it (.ci/run); on a developer's machine without it, say so instead of failing.
    if binary is None and not os.environ.get("CI"):
        pytest.skip("no Chromium here (Debian: apt-get install -y chromium)")
    assert binary is not None, "CI must have Chromium: .ci/run installs Debian's chromium"
    page, png = tmp_path / "report.html", tmp_path / "report.png"
    vss_restore(
        "report", *SINCE, "--format", "html", "--output", str(page), *pointed_at(two_nights)
    )

    chromium.screenshot(binary, page, png)

    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1200, 1400)
    assert len(data) > 20_000  # a rendered page, not a blank one


@pytest.mark.parametrize(
    ("alias", "code", "says"),
    [
        ("night1.D", 0, "verdict:   verified at 2026-11-25T00:"),
        ("sql1-night2.D", 1, "verdict:   failed at 2026-11-26T00:"),
        ("web1-night2.D", 1, "verdict:   none yet: no restore has recorded a verdict on it"),
        ("plain.C", 1, "is not a VSS snapshot"),
    ],
)
def test_status_of_a_snapshot_says_its_verdict(
    two_nights: Simulation, alias: str, code: int, says: str
) -> None:
    said = vss_restore("status", two_nights.aliases.snapshots[alias], *pointed_at(two_nights))

    assert said.code == code, said.err
    assert says in said.out


def test_status_of_a_snapshot_says_each_volume_and_the_rule(two_nights: Simulation) -> None:
    said = vss_restore("status", *ids(two_nights, "night1.C"), *pointed_at(two_nights))

    assert said.code == 0, said.err
    assert "rule:      recorded-shadow-copy-id (the shadow copy IDs the backup recorded)\n" in (
        said.out
    )
    shadow = two_nights.aliases.shadows["night1.C"]["C"]
    volumes = said.out.split("volumes:\n", 1)[1].split("execution:", 1)[0].splitlines()
    assert [line.split("  ")[1:2] for line in volumes] == [["drive"], ["partition 1"], ["C:"]]
    assert re.fullmatch(
        r"  partition 1 +FAT32 +not part of the backup +- +not scanned \(FAT32\)", volumes[1]
    )
    assert re.fullmatch(
        rf"  C: +NTFS +reverted to the recorded shadow copy +{re.escape(shadow)} of "
        r"2026-11-25T00:00:00Z +NoErrorsFound",
        volumes[2],
    )


def test_status_flags_a_verdict_reached_by_the_newest_copy_rule_as_weaker(
    two_nights: Simulation,
) -> None:
    said = vss_restore("status", *ids(two_nights, "sql1-night2.E"), *pointed_at(two_nights))

    assert said.code == 0, said.err
    assert (
        "rule:      newest-on-each-volume  WEAKER: the newest shadow copy on each volume (no ID "
        "or set recorded): weaker, it may be a Previous Versions copy taken after the backup\n"
    ) in said.out
    assert re.search(r"\n  E: +NTFS +reverted to the newest copy +\{", said.out)


def test_status_of_a_failed_execution_by_name_says_why(two_nights: Simulation) -> None:
    (failed,) = ids(two_nights, "sql1-night2.D")
    ec2: Any = boto3.client("ec2", region_name=two_nights.world.region)
    snapshot = ec2.describe_snapshots(SnapshotIds=[failed])["Snapshots"][0]
    name = tags.as_dict(snapshot.get("Tags"))[tags.EXECUTION].rsplit(":", 1)[1]

    said = vss_restore("status", name, *pointed_at(two_nights))

    assert said.code == 1
    assert f"execution: {name} (arn:aws:states:" in said.out
    assert "status:    FAILED after 0:" in said.out
    assert f"verdict:   {failed} failed: RevertFailed" in said.out


def test_status_without_a_target_lists_the_latest_executions(two_nights: Simulation) -> None:
    said = vss_restore("status", *pointed_at(two_nights))

    assert said.code == 0
    assert said.out.startswith("the latest 8 executions of arn:aws:states:")
    assert "reconcile-" in said.out
    assert said.out.count("SUCCEEDED") == 7
    assert said.out.count("FAILED") == 1


def test_status_of_an_unknown_snapshot_is_a_clear_error(two_nights: Simulation) -> None:
    said = vss_restore("status", "snap-0123456789abcdef0", *pointed_at(two_nights))

    assert (said.code, said.err) == (
        2,
        "vss-restore: snap-0123456789abcdef0 does not exist in us-east-1 "
        "(or is not visible to this account)\n",
    )


def test_report_shows_the_snapshots_kept_their_sizes_and_the_monthly_storage(
    two_nights: Simulation,
) -> None:
    said = vss_restore("report", *SINCE, "--format", "json", *pointed_at(two_nights))

    assert said.code == 0, said.err
    storage = json.loads(said.out)["storage"]
    by_instance = {row["instance_id"]: row for row in storage["instances"]}
    web1, sql1 = (two_nights.aliases.instances[name] for name in ("web1", "sql1"))
    # web1: C: (30 GiB) and D: (50 GiB) of night 1 restored, D: of night 2 not yet: one
    # chain per drive (the consistent snapshots are incremental relative to their source,
    # unencrypted like it), so 80 GiB stored at most for the full copies.
    assert by_instance[web1] == {
        "instance_id": web1,
        "drives": 2,
        "backups": 3,
        "consistent": 2,
        "provisioned_gib": 30 + 50 + 50 + 30 + 50,
        "chains": 2,
        "estimated_gib": 80,
        "estimated_monthly_usd": 4.0,
    }
    # sql1: D: (100 GiB, its restore failed) and E: (50 GiB, verified).
    assert (by_instance[sql1]["backups"], by_instance[sql1]["consistent"]) == (2, 1)
    assert by_instance[sql1]["estimated_gib"] == 150
    # AWS's own VSS snapshot is not ours: not counted.
    assert set(by_instance) == {web1, sql1}
    assert storage["estimated_monthly_usd"] == 11.5
    assert "$0.05/GB-month" in storage["price"]
    table = vss_restore("report", *SINCE, *pointed_at(two_nights)).out
    assert "SNAPSHOTS KEPT (every age): $11.50 a month, from" in table
    html = vss_restore("report", *SINCE, "--format", "html", *pointed_at(two_nights)).out
    assert "<h2>Snapshots kept: $11.50 a month, from</h2>" in html


def test_no_reverification_failed_no_section_a_zero_tile_and_empty_fields(
    two_nights: Simulation,
) -> None:
    table = vss_restore("report", *SINCE, *pointed_at(two_nights))
    assert table.code == 0, table.err
    assert "RE-VERIFICATION" not in table.out
    assert re.search(r"  re-verified \(UTC\)\n", table.out)
    (verified,) = ids(two_nights, "night1.D")
    (row,) = [line for line in table.out.splitlines() if line.startswith(f"    {verified}")]
    assert row.endswith("  -")  # never re-verified

    document = json.loads(
        vss_restore("report", *SINCE, "--format", "json", *pointed_at(two_nights)).out
    )
    assert (document["summary"]["reverify_failed"], document["reverify_failures"]) == (0, [])
    rows = list(
        csv.DictReader(
            io.StringIO(
                vss_restore("report", *SINCE, "--format", "csv", *pointed_at(two_nights)).out
            )
        )
    )
    assert {(r["reverified_at"], r["reverify_result"], r["reverify_reason"]) for r in rows} == {
        ("", "", "")
    }

    html = vss_restore("report", *SINCE, "--format", "html", *pointed_at(two_nights)).out
    assert re.search(r'<div class="tile reverify"[^>]*><b>0</b>re-verification failed', html)
    assert "Failed re-verifications" not in html
    assert "re-verified " not in html
