"""Where the CLI looks (the stack, boto3's settings) and what it says when it cannot."""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from operator_cli.errors import explain
from tests.cli.harness import vss_restore

REGION = "us-east-1"
UNKNOWN = "snap-0123456789abcdef0"


@pytest.fixture
def aws() -> Iterator[None]:
    """An empty moto account: no stack, no snapshot."""
    with mock.patch.dict(os.environ, {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}), mock_aws():
        yield


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing boto3 could find credentials in, and no instance metadata to ask."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def stack(parameters: dict[str, str]) -> str:
    """A CloudFormation stack with vss-restore's parameters and StateMachineArn output (the
    real template's resources are not needed to find them)."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(
        name="restore",
        definition=json.dumps(
            {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
        ),
        roleArn="arn:aws:iam::123456789012:role/restore",
    )["stateMachineArn"]
    template: dict[str, Any] = {
        "Parameters": {
            "VssTagKey": {"Type": "String", "Default": "ConsistentSnapshot"},
            "VssTagValue": {"Type": "String", "Default": "WindowsVSS"},
            "Machine": {"Type": "String"},
        },
        "Resources": {"AlertTopic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"StateMachineArn": {"Value": {"Ref": "Machine"}}},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="vss-restore",
        TemplateBody=json.dumps(template),
        Parameters=[
            {"ParameterKey": k, "ParameterValue": v}
            for k, v in {**parameters, "Machine": machine}.items()
        ],
    )
    return str(machine)


def snapshot(tag_key: str, tag_value: str) -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=10)["VolumeId"]
    return str(
        ec2.create_snapshot(
            VolumeId=volume,
            TagSpecifications=[
                {"ResourceType": "snapshot", "Tags": [{"Key": tag_key, "Value": tag_value}]}
            ],
        )["SnapshotId"]
    )


@pytest.mark.usefixtures("no_credentials")
@pytest.mark.parametrize(
    "command", [["report"], ["status", UNKNOWN], ["start", UNKNOWN], ["status"]]
)
def test_without_credentials_it_says_where_credentials_come_from(command: list[str]) -> None:
    said = vss_restore(*command, "--region", REGION)

    assert said.code == 2
    assert said.err == (
        "vss-restore: no AWS credentials found: set AWS_PROFILE (or give --profile), run "
        "`aws configure` (or `aws sso login`), or export AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY\n"
    )
    assert said.out == ""


@pytest.mark.usefixtures("no_credentials")
def test_without_a_region_it_asks_for_one() -> None:
    said = vss_restore("report")

    assert said.code == 2
    assert said.err.startswith("vss-restore: no AWS region: give --region, set AWS_REGION")


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(
    ("options", "env", "stack_name"),
    [
        ([], {}, "vss-restore"),
        (["--stack", "vss-restore-test"], {}, "vss-restore-test"),
        ([], {"VSS_RESTORE_STACK": "from-env"}, "from-env"),
    ],
)
def test_without_the_stack_it_says_to_deploy_or_name_it(
    options: list[str], env: dict[str, str], stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    said = vss_restore("report", "--region", REGION, *options)

    assert said.code == 2
    assert said.err == (
        f"vss-restore: no stack {stack_name} in {REGION}: deploy it with sam deploy, "
        "or give --stack\n"
    )


@pytest.mark.usefixtures("aws")
def test_an_unknown_snapshot_is_named_with_the_region() -> None:
    machine = stack({})

    said = vss_restore("status", UNKNOWN, "--region", REGION)
    started = vss_restore("start", UNKNOWN, "--region", REGION)

    expected = (
        f"vss-restore: {UNKNOWN} does not exist in {REGION} (or is not visible to this account)\n"
    )
    assert (said.code, said.err) == (2, expected)
    assert (started.code, started.err) == (2, expected)
    listed = boto3.client("stepfunctions", region_name=REGION).list_executions(
        stateMachineArn=machine
    )
    assert listed["executions"] == []


@pytest.mark.usefixtures("aws")
def test_the_stack_says_where_the_workflow_is_and_what_marks_a_vss_snapshot() -> None:
    machine = stack({"VssTagKey": "Backup", "VssTagValue": "nightly-vss"})
    ours = snapshot("Backup", "nightly-vss")
    snapshot("ConsistentSnapshot", "WindowsVSS")  # the default marker, not this stack's

    listed = vss_restore("status", "--region", REGION)
    report = vss_restore("report", "--format", "json", "--region", REGION)

    assert listed.code == 0, listed.err
    assert listed.out == f"no executions of {machine} yet\n"
    assert report.code == 0, report.err
    found = json.loads(report.out)
    assert found["stack"] == "vss-restore"
    assert found["vss_tag"] == "Backup=nightly-vss"
    assert [
        s["snapshot_id"]
        for i in found["instances"]
        for b in i["backup_sets"]
        for s in b["snapshots"]
    ] == [ours]


@pytest.mark.usefixtures("aws")
def test_options_and_environment_point_it_elsewhere_without_cloudformation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = snapshot("Backup", "nightly-vss")
    monkeypatch.setenv("VSS_RESTORE_VSS_TAG", "Backup=nightly-vss")

    report = vss_restore("report", "--format", "csv", "--region", REGION)
    status = vss_restore("status", ours, "--region", REGION)

    assert report.code == 0, report.err  # no stack exists, and none was needed
    assert ours in report.out
    assert status.code == 1
    assert "verdict:   none yet" in status.out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["report", "--vss-tag", "Backup"], "--vss-tag 'Backup' is not KEY=VALUE"),
        (["report", "--state-machine", "restore"], "--state-machine 'restore' is not a state"),
        (["report", "--stack", "no spaces"], "--stack 'no spaces' is not a CloudFormation stack"),
        (["report", "--since", "last week"], "--since: 'last week' is neither a duration"),
        (["status", "snap-nope"], "'snap-nope' is not a snapshot ID (snap-...)"),
    ],
)
@pytest.mark.usefixtures("aws")
def test_bad_options_are_usage_errors(argv: list[str], says: str) -> None:
    said = vss_restore(*argv, "--region", REGION)

    assert said.code == 2
    assert says in said.err


def test_expired_credentials_and_refusals_are_explained() -> None:
    def refused(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "no"}}, "DescribeSnapshots")

    assert "refresh them" in str(explain(refused("ExpiredToken"), REGION))
    assert str(explain(refused("UnauthorizedOperation"), REGION)) == (
        f"not allowed to call DescribeSnapshots in {REGION}: no"
    )


def test_simulate_runs_a_scenario_as_the_simulator_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "quiet-night.json"
    scenario.write_text(
        json.dumps({"name": "quiet-night", "instances": {"helper": {"helper": True}}, "steps": []})
    )

    said = vss_restore("simulate", str(scenario), "--quiet")

    printed = capsys.readouterr().out
    assert said.code == 0
    assert "volumes left: none" in printed
    assert printed.rstrip().endswith("OK")
