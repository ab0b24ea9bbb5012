"""Issue #5, the rest of the template: logs, encryption, the SSM documents, the helper, the
resource policies and every suppression of a checkov finding, read from the template SAM
synthesizes (tests/security/iam.py).
"""

import re
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from tests.security import iam
from tests.security.iam import Stack
from vss_restore.aws.ssm import Ssm


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack()


def _of_type(stack: Stack, kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical: stack.resolve(body.get("Properties", {}))
        for logical, body in stack.resources.items()
        if body["Type"] == kind
    }


# --- logs -------------------------------------------------------------------------------------


def test_every_log_group_has_a_retention_period(stack: Stack) -> None:
    groups = _of_type(stack, "AWS::Logs::LogGroup")
    assert groups
    for logical, properties in groups.items():
        assert int(properties["RetentionInDays"]) > 0, logical


def test_every_function_logs_to_a_log_group_of_the_stack(stack: Stack) -> None:
    """Else Lambda creates /aws/lambda/<name> itself, kept forever."""
    ours = {stack.ref(logical) for logical in _of_type(stack, "AWS::Logs::LogGroup")}
    for logical, properties in _of_type(stack, "AWS::Lambda::Function").items():
        assert properties["LoggingConfig"]["LogGroup"] in ours, logical


def test_the_state_machine_logs_errors_without_execution_data(stack: Stack) -> None:
    [machine] = _of_type(stack, "AWS::StepFunctions::StateMachine").values()
    logging = machine["LoggingConfiguration"]
    assert logging["Level"] in {"ERROR", "FATAL", "OFF"}
    assert logging["IncludeExecutionData"] is False
    [destination] = logging["Destinations"]
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == stack.get_att(
        "StateMachineLogs", "Arn"
    )


# --- encryption at rest ------------------------------------------------------------------------


def test_the_topic_queues_and_tables_are_encrypted(stack: Stack) -> None:
    topics = _of_type(stack, "AWS::SNS::Topic")
    queues = _of_type(stack, "AWS::SQS::Queue")
    tables = _of_type(stack, "AWS::DynamoDB::Table")
    assert topics
    assert queues
    assert tables
    for logical, topic in topics.items():
        assert topic.get("KmsMasterKeyId"), logical
    for logical, queue in queues.items():
        assert queue.get("SqsManagedSseEnabled") is True or queue.get("KmsMasterKeyId"), logical
    for logical, table in tables.items():
        assert table["SSESpecification"]["SSEEnabled"] is True, logical


# --- resource policies -------------------------------------------------------------------------


# Where each resource type keeps its resource policy.
RESOURCE_POLICIES = {
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
}


def _source_condition(statement: dict[str, Any]) -> str:
    """The account or ARN a service principal's statement is bound to, "" if none."""
    for keys in statement.get("Condition", {}).values():
        for key, value in keys.items():
            if key.lower() in {"aws:sourcearn", "aws:sourceaccount"}:
                return str(value)
    return ""


def test_services_reach_our_resources_only_from_this_account(stack: Stack) -> None:
    """A service principal without a source condition is a confused deputy."""
    for logical, permission in _of_type(stack, "AWS::Lambda::Permission").items():
        assert permission["Principal"] == "events.amazonaws.com", logical
        assert permission["SourceArn"].startswith(f"arn:aws:events:{iam.REGION}:{iam.ACCOUNT}:")
    checked = 0
    for kind, document in RESOURCE_POLICIES.items():
        for logical, properties in _of_type(stack, kind).items():
            for statement in properties[document]["Statement"]:
                principal = statement.get("Principal", {})
                if "Service" not in principal:
                    # Only the account itself (a key policy's administrators).
                    assert principal == {"AWS": f"arn:aws:iam::{iam.ACCOUNT}:root"}, logical
                    continue
                checked += 1
                source = _source_condition(statement)
                assert source == iam.ACCOUNT or source.startswith(
                    f"arn:aws:events:{iam.REGION}:{iam.ACCOUNT}:"
                ), (logical, statement.get("Sid"))
    assert checked, "no resource policy names a service: has the template changed?"


# --- the SSM documents ---------------------------------------------------------------------------


def test_every_ssm_document_parameter_is_validated(stack: Stack) -> None:
    documents = _of_type(stack, "AWS::SSM::Document")
    assert set(documents) == {"DiskToolDocument", "BackupDocument"}
    for logical, document in documents.items():
        parameters = document["Content"]["parameters"]
        script = "\n".join(
            command
            for step in document["Content"]["mainSteps"]
            for command in step["inputs"]["runCommand"]
        )
        assert set(re.findall(r"\{\{\s*(\w+)\s*\}\}", script)) == set(parameters), logical
        for name, parameter in parameters.items():
            assert parameter["type"] == "String", (logical, name)
            pattern = parameter.get("allowedPattern", "")
            assert pattern.startswith("^"), (logical, name)
            assert pattern.endswith("$"), (logical, name)
            # Nothing that closes PowerShell's single quotes or starts a new line.
            for hostile in ("'", "';Restart-Computer;'", "x\nRestart-Computer", "$(calc)", "`"):
                assert not re.fullmatch(pattern, hostile), (logical, name, hostile)


# --- the helper needs nothing beyond AmazonSSMManagedInstanceCore ---------------------------------


def test_the_stack_gives_no_instance_a_role_but_the_fleets_helpers(stack: Stack) -> None:
    """The one instance profile is the launched helpers' (HelperMode=fleet only), whose role
    holds AmazonSSMManagedInstanceCore only (tests/security/test_fleet_launch.py)."""
    profiles = _of_type(stack, "AWS::IAM::InstanceProfile")
    assert set(profiles) == {"HelperInstanceProfile"}
    assert stack.resources["HelperInstanceProfile"]["Condition"] == "IsFleet"
    assert stack.resources["HelperRole"]["Condition"] == "IsFleet"
    trusting_ec2 = [n for n, p in stack.roles().items() if "ec2.amazonaws.com" in p.trusted]
    assert trusting_ec2 == ["HelperRole"]  # the default, HelperMode=fleet
    for name, principal in Stack({"HelperMode": "named"}).roles().items():
        assert "ec2.amazonaws.com" not in principal.trusted, name  # named mode: none


# What a script needs instance credentials for: AWS modules and cmdlets, the instance
# metadata service, web calls, the AWS CLI.
NEEDS_CREDENTIALS = (
    r"AWS\.Tools",
    r"AWSPowerShell",
    r"-(EC2|S3|SSM|STS|KMS)\w*",
    r"169\.254\.169\.254",
    r"Invoke-(RestMethod|WebRequest)",
    r"(?-i:\baws(\.exe)?\s+[a-z0-9-]+\s+[a-z-]+)",  # the CLI: aws ec2 describe-volumes
)


def _aws_calls(stack: Stack, document: str) -> list[str]:
    [step] = _of_type(stack, "AWS::SSM::Document")[document]["Content"]["mainSteps"]
    script = "\n".join(step["inputs"]["runCommand"])
    return [p for p in NEEDS_CREDENTIALS if re.search(p, script, re.IGNORECASE)]


def test_the_disk_tool_calls_no_aws_api_from_the_helper(stack: Stack) -> None:
    assert _aws_calls(stack, "DiskToolDocument") == []


def test_the_same_look_finds_the_backups_calls(stack: Stack) -> None:
    """The backup does call EC2 (BackupInstancePolicy): the check is not blind."""
    assert set(_aws_calls(stack, "BackupDocument")) >= {
        r"AWS\.Tools",
        r"-(EC2|S3|SSM|STS|KMS)\w*",
        r"169\.254\.169\.254",
    }


def test_run_command_asks_the_helper_to_write_no_output_anywhere() -> None:
    """No OutputS3BucketName, no CloudWatchOutputConfig: the helper's role would need them."""
    client = boto3.session.Session().client("ssm", region_name=iam.REGION)
    expected = {
        "DocumentName": "vss-restore-DiskTool",
        "InstanceIds": ["i-0abc1234def567890"],
        "Parameters": {"Action": ["Inspect"]},
        "TimeoutSeconds": 600,
        "Comment": "vss-restore Inspect",
    }
    with Stubber(client) as stubber:
        stubber.add_response(
            "send_command",
            {"Command": {"CommandId": "2f9d1c4e-8b7a-4c3d-9e2f-1a2b3c4d5e6f"}},
            expected,
        )
        Ssm(client).send_command(
            document="vss-restore-DiskTool",
            instance_id="i-0abc1234def567890",
            parameters={"Action": ["Inspect"]},
            timeout_seconds=600,
            comment="vss-restore Inspect",
        )
        stubber.assert_no_pending_responses()


# --- checkov and cfn-lint suppressions ------------------------------------------------------------


def _justified(text: str) -> bool:
    return len(str(text).split()) >= 12


def test_every_checkov_suppression_in_the_template_says_why(stack: Stack) -> None:
    source = iam.load_template(iam.TEMPLATE)["Resources"]
    skipped = 0
    for logical, body in source.items():
        for skip in body.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skipped += 1
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), logical
            assert _justified(skip.get("comment", "")), (logical, skip["id"])
        cfn_lint = body.get("Metadata", {}).get("cfn-lint", {})
        assert not cfn_lint, f"{logical}: a cfn-lint suppression; fix the finding instead"
    assert skipped, "no suppressions found: has the Metadata format changed?"
    text = iam.TEMPLATE.read_text(encoding="utf-8")
    assert not re.search(r"checkov:skip=|cfn-lint:\s*disable|cfn_nag", text)


def test_every_project_wide_checkov_suppression_says_why() -> None:
    config = Path(iam.REPO / ".checkov.yaml")
    lines = config.read_text(encoding="utf-8").splitlines()
    skipped = yaml.safe_load("\n".join(lines))["skip-check"]
    assert skipped
    for check in skipped:
        [at] = [i for i, line in enumerate(lines) if line.strip() == f"- {check}"]
        comment = []
        for line in reversed(lines[:at]):
            if not line.strip().startswith("#"):
                break
            comment.append(line.strip().lstrip("# "))
        assert _justified(" ".join(comment)), check
