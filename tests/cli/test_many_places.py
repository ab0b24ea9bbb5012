"""`vss-restore report` and `doctor` over two accounts and two Regions at once.

Account A is the simulated one after two nights; account B (another account, reached by
its own profile's credentials, in another Region) holds the same stack and a copy of A's
VSS snapshots with their verdicts, as a StackSet's second stack instance would."""

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from simulator import Simulation
from tests.cli.harness import operating, vss_restore
from vss_restore import tags

SECOND = "210987654321"
SECOND_REGION = "eu-west-1"
SINCE = ("--since", "2026-11-20")
# What marks a VSS snapshot: the stack's tag, or AWS's own VSS tooling's.
VSS = [
    {"Name": "tag:ConsistentSnapshot", "Values": ["WindowsVSS"]},
    {"Name": f"tag:{tags.AWS_APP_CONSISTENT}", "Values": ["true"]},
]


@pytest.fixture(scope="module")
def two_accounts(two_nights: Simulation, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Profile a reaches the simulated account A, profile b account B; the config file."""
    region = two_nights.world.region
    keys = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{SECOND}:role/OrganizationAccountAccessRole",
        RoleSessionName="vss-restore-report",
    )["Credentials"]
    second = boto3.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        region_name=SECOND_REGION,
    )
    _copy_stack(region, second)
    _copy_snapshots(two_nights, second)
    config = tmp_path_factory.mktemp("aws") / "config"
    config.write_text(
        f"[profile a]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
        f"region = {region}\n"
        f"[profile b]\naws_access_key_id = {keys['AccessKeyId']}\n"
        f"aws_secret_access_key = {keys['SecretAccessKey']}\n"
        f"aws_session_token = {keys['SessionToken']}\nregion = {SECOND_REGION}\n"
    )
    return config


@pytest.fixture
def profiles(two_accounts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(two_accounts))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(two_accounts.parent / "none"))
    # An operator whose profiles name their Regions: AWS_DEFAULT_REGION would win over a
    # profile's region (boto3's configuration order), as it does in the AWS CLI.
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)


def _copy_stack(region: str, second: boto3.Session) -> None:
    cloudformation: Any = boto3.client("cloudformation", region_name=region)
    (stack,) = cloudformation.describe_stacks(StackName="vss-restore")["Stacks"]
    template = cloudformation.get_template(StackName="vss-restore")["TemplateBody"]
    second.client("cloudformation").create_stack(
        StackName="vss-restore",
        TemplateBody=template if isinstance(template, str) else json.dumps(template),
        Parameters=[
            {"ParameterKey": p["ParameterKey"], "ParameterValue": p["ParameterValue"]}
            for p in stack["Parameters"]
        ],
    )


def _copy_snapshots(simulation: Simulation, second: boto3.Session) -> None:
    """Each VSS snapshot of A again in B, same size and verdict (no execution: B's own
    workflow never ran in this test)."""
    ec2_b: Any = second.client("ec2")
    ec2_a: Any = boto3.client("ec2", region_name=simulation.world.region)
    originals = [
        snapshot
        for marker in VSS
        for snapshot in ec2_a.describe_snapshots(OwnerIds=["self"], Filters=[marker])["Snapshots"]
    ]
    volumes = [
        ec2_b.create_volume(AvailabilityZone=f"{SECOND_REGION}a", Size=s["VolumeSize"])
        for s in originals
    ]
    with operating(simulation):
        simulation.clock.sleep(60)  # the volumes become available
    for original, volume in zip(originals, volumes, strict=True):
        copied = [t for t in original["Tags"] if t["Key"] != tags.EXECUTION]
        ec2_b.create_snapshot(
            VolumeId=volume["VolumeId"],
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": copied}],
        )
    with operating(simulation):
        simulation.clock.sleep(3600)  # and the snapshots complete


def test_report_of_two_accounts_merges_them_with_account_and_region_on_every_row(
    two_nights: Simulation, profiles: None
) -> None:
    said = vss_restore("report", *SINCE, "--profiles", "a,b")

    assert said.code == 0, said.err
    assert "12 VSS snapshots in 2 accounts, 2 Regions: 8 verified, 2 failed, 2 pending" in said.out
    failed = said.out.split("\nFAILED, every account\n", 1)[1].split("\n\n", 1)[0]
    failed_rows = failed.splitlines()[1:]
    assert sorted(row.split()[:2] for row in failed_rows) == [
        ["123456789012", two_nights.world.region],
        [SECOND, SECOND_REGION],
    ]
    a = f"=== account 123456789012, {two_nights.world.region} (profile a) ==="
    b = f"=== account {SECOND}, {SECOND_REGION} (profile b) ==="
    assert said.out.index(a) < said.out.index(b)
    assert "6 VSS snapshots: 4 verified, 1 failed, 1 pending" in said.out.split(b)[1]

    rows = list(
        csv.DictReader(
            io.StringIO(vss_restore("report", *SINCE, "--profiles", "a,b", "--format", "csv").out)
        )
    )
    assert len(rows) == 12
    assert {(r["account_id"], r["region"]) for r in rows} == {
        ("123456789012", two_nights.world.region),
        (SECOND, SECOND_REGION),
    }


def test_report_json_of_two_accounts_has_each_place_and_the_total(
    two_nights: Simulation, profiles: None
) -> None:
    said = vss_restore("report", *SINCE, "--profiles", "a,b", "--format", "json")

    document = json.loads(said.out)
    assert document["summary"] == {
        "verified": 8,
        "failed": 2,
        "pending": 2,
        "reverify_failed": 0,
    }
    assert [(p["account_id"], p["region"], p["profile"]) for p in document["places"]] == [
        ("123456789012", two_nights.world.region, "a"),
        (SECOND, SECOND_REGION, "b"),
    ]
    assert document["not_read"] == []


def test_the_html_report_groups_by_account(
    two_nights: Simulation, profiles: None, tmp_path: Path
) -> None:
    page = tmp_path / "org.html"
    said = vss_restore("report", *SINCE, "--profiles", "b,a", "--format", "html", "-o", str(page))

    assert said.code == 0, said.err
    html = page.read_text()
    accounts = re.findall(r"<h2>Account (\d+)</h2>", html)
    assert accounts == ["123456789012", SECOND]
    second = html.split(f"<h2>Account {SECOND}</h2>", 1)[1]
    assert f"<h3>{SECOND_REGION} · profile b</h3>" in second
    assert "<h4>Failures (1)</h4>" in second  # each place's sections under its account
    assert "<script" not in html


def test_a_place_that_cannot_be_read_is_named_and_the_rest_is_reported(
    two_nights: Simulation, profiles: None
) -> None:
    """a in eu-west-1 and b in A's Region have no stack: said, exit 1, the rest still read."""
    said = vss_restore(
        "report",
        *SINCE,
        "--profiles",
        "a,b",
        "--regions",
        f"{two_nights.world.region},{SECOND_REGION}",
    )

    assert said.code == 1
    assert "12 VSS snapshots in 2 accounts, 2 Regions" in said.out
    assert "2 places NOT READ" in said.out
    not_read = said.out.split("\nNOT READ\n", 1)[1].split("\n\n", 1)[0]
    assert f"profile a, Region {SECOND_REGION}: no stack vss-restore in {SECOND_REGION}" in not_read
    assert f"profile b, Region {two_nights.world.region}: no stack vss-restore" in not_read


def test_doctor_checks_each_place_and_fails_if_one_does(
    two_nights: Simulation, profiles: None
) -> None:
    said = vss_restore("doctor", "--profiles", "a,b", "--json")

    document = json.loads(said.out)
    assert document["not_read"] == []
    assert [(p["account_id"], p["region"]) for p in document["places"]] == [
        ("123456789012", two_nights.world.region),
        (SECOND, SECOND_REGION),
    ]
    # B's stack record names A's workflow, topic and helper, none of which exist in B: each
    # is a failed check saying so, not an error that hides the rest.
    (b,) = [p for p in document["places"] if p["account_id"] == SECOND]
    failed = {c["name"]: c["found"] for c in b["checks"] if not c["ok"]}
    helper = two_nights.aliases.instances["helper"]
    assert failed[f"helper {helper}"] == "does not exist"
    assert failed["alerts"].endswith("does not exist here")
    assert failed["workflow"]
    assert not b["ok"]
    assert said.code == 1
    text = vss_restore("doctor", "--profiles", "a,b").out
    assert f"=== account {SECOND}, {SECOND_REGION} (profile b) ===" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--profiles", "a,b", "--profile", "a"], "give --profile or --profiles, not both"),
        (["--regions", "eu-west-1", "--region", "us-east-1"], "give --region or --regions"),
        (["--regions", "eu-west-1,Mars"], "--regions: 'Mars' is not a Region"),
        (["--profiles", "a;rm"], "--profiles: 'a;rm' is not a profile name"),
    ],
)
def test_bad_places_are_usage_errors(argv: list[str], message: str, profiles: None) -> None:
    said = vss_restore("report", *argv)

    assert said.code == 2
    assert message in said.err
