"""The parliament audit (tools/audit_policies.py) fails on what it should, and only on that."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.iam.stack import TEMPLATE
from tools.audit_policies import Audit, Finding, audit, main

# A function whose role may delete any volume: parliament's RESOURCE_STAR, as DeleteVolume
# takes a volume ARN. Its Describe on "*" is no finding (no resource-level permissions).
TEMPLATE_TEXT = """\
Resources:
  ExampleFunction:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Version: "2012-10-17"
          Statement:
            - Sid: ReadVolumes
              Effect: Allow
              Action: ec2:DescribeVolumes
              # Describe calls support no resource-level permissions.
              Resource: "*"
            - Sid: DeleteAnyVolume
              Effect: Allow
              Action: ec2:DeleteVolume
              Resource: "*"
  ExamplePolicy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument: !Sub |
        {"Version": "2012-10-17", "Statement": [
          {"Sid": "DeleteAnyVolume", "Effect": "Allow",
           "Action": "ec2:DeleteVolume", "Resource": "*"}
        ]}
"""
DELETE_ANY_VOLUME = Finding(
    "ExampleFunctionRole",
    "ExampleFunctionRolePolicy0",
    ("DeleteAnyVolume",),
    "RESOURCE_STAR",
    "LOW",
    '["ec2:DeleteVolume"]',
)


def _audit(text: str, principal: str = "ExampleFunctionRole") -> Audit:
    """The example's policies audited against the template text's markers."""
    resources = yaml.safe_load(text.replace("!Sub", ""))["Resources"]
    documents: dict[str, list[tuple[str, Any]]] = {
        "ExampleFunctionRole": [
            (
                "ExampleFunctionRolePolicy0",
                resources["ExampleFunction"]["Properties"]["Policies"][0],
            )
        ],
        "ExamplePolicy": [
            (
                "ExamplePolicy",
                yaml.safe_load(resources["ExamplePolicy"]["Properties"]["PolicyDocument"]),
            )
        ],
    }
    return audit({"default parameters": {principal: documents[principal]}}, text)


def _marked(after: str, marker: str, text: str = TEMPLATE_TEXT) -> str:
    """The template text with the marker's lines right after the first line that is `after`."""
    head, found, tail = text.partition(after + "\n")
    assert found, after
    return head + found + marker + "\n" + tail


def test_a_wildcard_on_a_mutating_action_is_reported_and_fails_the_audit() -> None:
    result = _audit(TEMPLATE_TEXT)

    assert list(result.findings) == [DELETE_ANY_VOLUME]
    assert not result.accepted
    assert not result.passed


def test_a_marker_in_the_statement_accepts_its_finding() -> None:
    text = _marked(
        "            - Sid: DeleteAnyVolume",
        "              # parliament: RESOURCE_STAR accepted: the example's reason,\n"
        "              #   which goes on here.",
    )

    result = _audit(text)

    assert result.accepted[DELETE_ANY_VOLUME].reason == "the example's reason, which goes on here."
    assert result.passed


def test_a_marker_in_the_comments_right_above_the_statement_accepts_its_finding() -> None:
    text = _marked(
        '              Resource: "*"',
        "            # parliament: RESOURCE_STAR accepted: the example's reason.",
    )

    assert _audit(text).passed


def test_a_marker_beside_another_statement_accepts_nothing_and_is_stale() -> None:
    text = _marked(
        "            - Sid: ReadVolumes",
        "              # parliament: RESOURCE_STAR accepted: the example's reason.",
    )

    result = _audit(text)

    assert not result.accepted
    assert result.problems == [
        "template line 9: stale marker, RESOURCE_STAR in ReadVolumes of ExampleFunction "
        "matches no finding"
    ]
    assert not result.passed


@pytest.mark.parametrize(
    "marker",
    [
        "              # parliament: RESOURCE_STAR accepted:",
        "              # parliament: RESOURCE_STAR accepted:   ",
        "              # parliament: RESOURCE_STAR",
    ],
)
def test_a_marker_without_a_reason_accepts_nothing(marker: str) -> None:
    result = _audit(_marked("            - Sid: DeleteAnyVolume", marker))

    assert not result.accepted
    assert len(result.problems) == 1
    assert result.problems[0].startswith("template line 14: ")
    assert not result.passed


def test_a_marker_for_a_finding_that_is_gone_is_stale() -> None:
    fixed = TEMPLATE_TEXT.replace(
        'Action: ec2:DeleteVolume\n              Resource: "*"',
        "Action: ec2:DeleteVolume\n"
        "              Resource: arn:aws:ec2:us-east-1:123456789012:volume/vol-0123456789abcdef0",
    )
    text = _marked(
        "            - Sid: DeleteAnyVolume",
        "              # parliament: RESOURCE_STAR accepted: the example's reason.",
        fixed,
    )

    result = _audit(text)

    assert not result.findings
    assert result.problems == [
        "template line 14: stale marker, RESOURCE_STAR in DeleteAnyVolume of ExampleFunction "
        "matches no finding"
    ]


def test_a_statement_in_json_text_is_accepted_by_name_above_its_resource() -> None:
    text = TEMPLATE_TEXT.replace(
        "  ExamplePolicy:\n",
        "  # parliament: RESOURCE_STAR in DeleteAnyVolume accepted: the example's reason.\n"
        "  ExamplePolicy:\n",
    )

    result = _audit(text, "ExamplePolicy")

    assert [f.principal for f in result.accepted] == ["ExamplePolicy"]
    assert result.passed


def test_a_marker_outside_the_statements_accepts_what_is_about_the_whole_policy() -> None:
    """E.g. the policies SAM writes for a resource, with no Version and no Sid."""
    unversioned = TEMPLATE_TEXT.replace(
        '        - Version: "2012-10-17"\n          Statement:', "        - Statement:"
    )
    text = _marked(
        "      Policies:",
        "        # parliament: NO_VERSION accepted: the example's reason.",
        _marked(
            "            - Sid: DeleteAnyVolume",
            "              # parliament: RESOURCE_STAR accepted: the example's reason.",
            unversioned,
        ),
    )

    result = _audit(text)

    assert sorted((f.issue, f.sids) for f in result.accepted) == [
        ("NO_VERSION", ()),
        ("RESOURCE_STAR", ("DeleteAnyVolume",)),
    ]
    assert result.passed


def test_the_template_fails_the_audit_without_one_of_its_markers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real template, synthesized and resolved, with DeliverLogs' marker taken out."""
    lines = TEMPLATE.read_text(encoding="utf-8").splitlines(keepends=True)
    sid = lines.index("            - Sid: DeliverLogs\n")
    assert lines[sid + 1].lstrip().startswith("# parliament: PERMISSIONS_MANAGEMENT_ACTIONS")
    end = sid + 2
    while lines[end].lstrip().startswith("#   "):
        end += 1
    template = tmp_path / "template.yaml"
    template.write_text("".join(lines[: sid + 1] + lines[end:]), encoding="utf-8")

    status = main(["--template", str(template)])

    out = capsys.readouterr().out
    assert status == 1
    assert (
        "RestoreStateMachineRole DeliverLogs: PERMISSIONS_MANAGEMENT_ACTIONS (MEDIUM) "
        '{"actions": ["logs:putresourcepolicy"]}\n    NOT ACCEPTED'
    ) in out
    assert " 1 not, 0 marker problems" in out
