"""The parts of the e2e kit only a real account runs, checked here as far as they can be:
the gate, the cost statement, the fixture template on moto's CloudFormation, the scripts."""

import io
import os
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws
from moto.ssm.models import Parameter, ssm_backends

from e2e import __main__ as entry
from e2e import cost, gate
from e2e.account import KIT_TAG, KitFailed
from e2e.aws import FIXTURE_TEMPLATE, SCRIPTS, files_json, script
from tests.e2e.twin import simulated_kit
from tools.cfn_template import load_template
from tools.parse_powershell import file_script, syntax_problems
from vss_restore import tags

ROOT = Path(__file__).parents[2]
WINDOWS_AMI = "/aws/service/ami-windows-latest/Windows_Server-2022-English-Full-Base"


def test_the_gate_wants_the_confirmation_credentials_and_a_region_each() -> None:
    assert gate.refusal({"E2E_ACCOUNT_OK": "yes"}, True, "eu-west-1") == ""
    for environ, credentials, region, why in [
        ({}, True, "eu-west-1", "E2E_ACCOUNT_OK=yes is not set"),
        ({"E2E_ACCOUNT_OK": "1"}, True, "eu-west-1", "E2E_ACCOUNT_OK=yes is not set"),
        ({"E2E_ACCOUNT_OK": "yes"}, False, "eu-west-1", "no AWS credentials"),
        ({"E2E_ACCOUNT_OK": "yes"}, True, "", "no Region given"),
        (
            {"E2E_ACCOUNT_OK": "yes", "AWS_ENDPOINT_URL": "http://localhost:5000"},
            True,
            "eu-west-1",
            "AWS_ENDPOINT_URL* is set",
        ),
    ]:
        assert why in gate.refusal(environ, credentials, region)


def test_make_e2e_states_cost_and_time_first_then_refuses_without_the_confirmation() -> None:
    out, err = io.StringIO(), io.StringIO()
    environ = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with (
        mock.patch.dict(os.environ, environ, clear=True),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        code = entry.main(["--region", "eu-west-1"])
    assert code == 2
    assert out.getvalue().startswith("vss-restore e2e kit: what it does in eu-west-1, what it")
    assert "time: about 60 minutes" in out.getvalue()
    assert f"${cost.WINDOWS_T3_MEDIUM_PER_HOUR:.4f}/h" in out.getvalue()
    assert "CHECK them for your Region" in out.getvalue()
    assert err.getvalue().startswith("not run: E2E_ACCOUNT_OK=yes is not set")


def test_make_e2e_is_never_part_of_make_test_or_ci() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_line = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert "e2e" not in test_line
    assert "e2e" not in (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^e2e: ", makefile, re.MULTILINE)


def _public_windows_ami(region: str) -> None:
    """moto has no /aws/service/ami-windows-latest parameters: the one the fixture reads."""
    backend = ssm_backends["123456789012"][region]
    backend._parameters[WINDOWS_AMI].append(
        Parameter(
            account_id="123456789012",
            name=WINDOWS_AMI,
            value="ami-0c2b0d3fb02824d92",
            parameter_type="String",
            description=None,
            allowed_pattern=None,
            keyid=None,
            last_modified_date=0,
            version=1,
            data_type="aws:ec2:image",
        )
    )


def test_the_fixture_stack_makes_a_vss_tagged_source_with_d_and_a_helper_and_takes_them_away() -> (
    None
):
    template = load_template(FIXTURE_TEMPLATE)
    assert template["Parameters"]["ImageId"]["Default"] == WINDOWS_AMI
    # moto's CloudFormation does not attach a role's managed policies: read them here.
    core = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"}
    resources = template["Resources"]
    assert resources["SourceRole"]["Properties"]["ManagedPolicyArns"] == [
        core,
        {"Ref": "BackupInstancePolicyArn"},
    ]
    assert resources["HelperRole"]["Properties"]["ManagedPolicyArns"] == [core]
    with mock.patch.dict(os.environ, {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}), mock_aws():
        _public_windows_ami("eu-west-1")
        cfn: Any = boto3.client("cloudformation", region_name="eu-west-1")
        ec2: Any = boto3.client("ec2", region_name="eu-west-1")
        policy = "arn:aws:iam::123456789012:policy/vss-restore-e2e-BackupInstancePolicy"
        parameters = {
            "RunId": "r1",
            "BackupInstancePolicyArn": policy,
            "VssTagKey": "ConsistentSnapshot",
            "VssTagValue": "WindowsVSS-e2e-r1",
        }
        cfn.create_stack(
            StackName="fixture",
            TemplateBody=FIXTURE_TEMPLATE.read_text(),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
        stack = cfn.describe_stacks(StackName="fixture")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        found = ec2.describe_instances(
            InstanceIds=[outputs["SourceInstanceId"], outputs["HelperInstanceId"]]
        )
        instances = {i["InstanceId"]: i for r in found["Reservations"] for i in r["Instances"]}
        source = instances[outputs["SourceInstanceId"]]
        helper = instances[outputs["HelperInstanceId"]]
        source_tags, helper_tags = tags.as_dict(source["Tags"]), tags.as_dict(helper["Tags"])
        assert source_tags["ConsistentSnapshot"] == "WindowsVSS-e2e-r1"
        assert source_tags[KIT_TAG] == helper_tags[KIT_TAG] == "r1"
        assert tags.HELPER not in source_tags
        assert helper_tags[tags.HELPER] == "true"
        assert "ConsistentSnapshot" not in helper_tags  # a backed-up helper is refused
        assert [m["DeviceName"] for m in source["BlockDeviceMappings"]] == [outputs["DataDevice"]]
        assert source["Placement"]["AvailabilityZone"] == helper["Placement"]["AvailabilityZone"]
        cfn.delete_stack(StackName="fixture")
        found = ec2.describe_instances(Filters=[{"Name": f"tag:{KIT_TAG}", "Values": ["r1"]}])
        assert {i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]} == {
            "terminated"
        }


@pytest.mark.parametrize("path", sorted(SCRIPTS.glob("*.ps1")), ids=lambda p: p.name)
def test_each_script_parses_stops_on_errors_and_exits_0_or_1(path: Path) -> None:
    assert syntax_problems(file_script(path)) == []
    text = path.read_text()
    assert "$ErrorActionPreference = 'Stop'" in text
    assert set(re.findall(r"\bexit (\S+)", text)) == {"0", "1"}
    assert "ConvertTo-Json -InputObject $result -Compress -Depth" in text


def test_a_pasted_value_that_could_close_its_quotes_is_refused() -> None:
    assert script("read-files.ps1", VolumeId="vol-0123456789abcdef0").startswith(
        "$VolumeId = 'vol-0123456789abcdef0'\n# vss-restore e2e kit"
    )
    with pytest.raises(ValueError, match="does not match its pattern"):
        script("read-files.ps1", VolumeId="vol-1'; Remove-Item C:\\ -Recurse; '")
    with pytest.raises(ValueError, match="does not match its pattern"):
        script("write-files.ps1", Drive="C", FilesJson=files_json({"a.txt": b"x"}))


def test_a_teardown_that_fails_is_reported_and_what_it_left_is_named() -> None:
    said: list[str] = []
    with simulated_kit("twin4", said.append) as (kit, _):

        def fails() -> None:
            raise KitFailed("DELETE_FAILED: the stack's role is gone")

        kit.stage.remove_fixture = fails  # type: ignore[method-assign]
        outcome = kit.run()

    assert outcome.failure == ""
    assert outcome.teardown_problems == [
        "the fixture stack: DELETE_FAILED: the stack's role is gone"
    ]
    assert sorted(line.split()[0] for line in outcome.left) == ["instance", "instance"]
    assert not outcome.ok
    assert said[-2:] == [f"LEFT BEHIND: {line}" for line in outcome.left]
