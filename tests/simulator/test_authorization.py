"""Issue #12: the simulator denies what AWS denies.

Every call a handler, the state machine, an EventBridge rule or the backup on an instance
makes is judged against that principal's policies in the synthesized template before moto
sees it. The demo runs clean with every call judged; remove one permission the workflow
needs from a copy of the template and the run fails at that step, with AWS's error.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from simulator import Report, Simulation, load
from simulator.scenario import REPO_ROOT
from tools.cfn_template import load_template

NIGHTLY = REPO_ROOT / "simulator" / "scenarios" / "nightly-backup.json"


def _run(document: dict[str, Any]) -> tuple[Report, Simulation]:
    with Simulation(load(document)) as simulation:
        report = simulation.run()
    return report, simulation


def _nightly(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(NIGHTLY.read_text())
    document.update(changes)
    return document


def _template_without(tmp_path: Path, resource: str, sid: str) -> Path:
    """A copy of template.yaml whose resource lost the statement `sid`, beside the code."""
    template = load_template(REPO_ROOT / "template.yaml")
    statements = template["Resources"][resource]["Properties"]["Policies"][0]["Statement"]
    kept = [s for s in statements if s.get("Sid") != sid]
    assert len(kept) == len(statements) - 1, f"{resource} has no statement {sid}"
    template["Resources"][resource]["Properties"]["Policies"][0]["Statement"] = kept
    for folder in ("functions", "statemachine"):
        (tmp_path / folder).symlink_to(REPO_ROOT / folder)
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(template))  # JSON is YAML: CloudFormation reads either
    return path


@pytest.fixture(scope="module")
def demo() -> tuple[Report, Simulation]:
    return _run(_nightly())


def test_the_demo_runs_with_every_call_judged_and_none_refused(
    demo: tuple[Report, Simulation],
) -> None:
    report, simulation = demo
    assert report.ok, report.failures
    assert report.calls_refused == []
    assert simulation.authorizer is not None
    callers = {call.principal for call in simulation.authorizer.calls}
    # Each kind of principal made calls that were judged: the step functions' roles, the
    # state machine's (its Lambda tasks), the rule's (StartExecution), the instance's policy
    # (the backup), and EventBridge through the functions' resource policies.
    assert {
        "ResolveSnapshotFunctionRole",
        "CreateVolumeFunctionRole",
        "AttachVolumeFunctionRole",
        "RunDiskToolFunctionRole",
        "SnapshotVolumeFunctionRole",
        "DeleteVolumeFunctionRole",
        "RecordVerdictFunctionRole",
        "RestoreStateMachineRole",
        "RestoreStateMachineSnapshotCompletedRole",
        "BackupInstancePolicy",
        "events.amazonaws.com",
    } <= callers
    assert report.calls_allowed == len(simulation.authorizer.calls)
    assert f"IAM: {report.calls_allowed} calls allowed, 0 refused" in report.table()


def test_each_call_is_authorized_on_the_resources_aws_names_for_it(
    demo: tuple[Report, Simulation],
) -> None:
    _, simulation = demo
    assert simulation.authorizer is not None
    resources: dict[str, set[str]] = {}
    for call in simulation.authorizer.calls:
        kinds = {re.sub(r"[:/][^:/]*$", "", arn) for arn in call.resources}
        resources.setdefault(call.action, set()).update(kinds)
    account = "arn:aws:ec2:us-east-1:123456789012"
    # CreateVolume: the new volume and the snapshot; AttachVolume: the volume and the
    # instance; CreateSnapshot: the volume and the new snapshot (Service Authorization
    # Reference); tags at creation: CreateTags on the new resource.
    assert resources["ec2:CreateVolume"] == {f"{account}:volume", "arn:aws:ec2:us-east-1::snapshot"}
    assert resources["ec2:AttachVolume"] == {f"{account}:volume", f"{account}:instance"}
    assert resources["ec2:CreateSnapshot"] == {
        f"{account}:volume",
        "arn:aws:ec2:us-east-1::snapshot",
    }
    assert resources["ssm:SendCommand"] == {
        "arn:aws:ssm:us-east-1:123456789012:document",
        f"{account}:instance",
    }
    assert resources["ec2:DescribeVolumes"] == {"*"}


def test_every_call_the_demo_made_is_one_the_static_call_map_predicts(
    demo: tuple[Report, Simulation],
) -> None:
    # The two call maps check each other: what the handlers did in the run (recorded by the
    # simulator) must be among what tests/security computes from the code for each role.
    from tests.security.test_least_privilege import expected_actions

    _, simulation = demo
    assert simulation.authorizer is not None
    recorded: dict[str, set[str]] = {}
    for call in simulation.authorizer.calls:
        if call.principal.endswith("FunctionRole"):
            recorded.setdefault(call.principal, set()).add(call.action)
    assert len(recorded) >= 10
    unpredicted = {
        role: sorted(actions - expected_actions(role))
        for role, actions in recorded.items()
        if actions - expected_actions(role)
    }
    assert unpredicted == {}


def test_a_permission_missing_from_the_template_fails_the_restore_at_that_step(
    tmp_path: Path,
) -> None:
    # The audit's finding: CreateVolumeFunctionRole without ec2:DescribeVolumes, which the
    # create step needs to wait for its volume.
    template = _template_without(tmp_path, "CreateVolumeFunction", "Describe")
    expect = {"executions": {"FAILED": 2}, "refused_calls": 2, "alerts": 2}
    report, simulation = _run(_nightly(template=str(template), expect=expect))

    assert report.ok, report.failures
    assert report.calls_refused == [
        "CreateVolumeFunctionRole ec2:DescribeVolumes on *",
        "CreateVolumeFunctionRole ec2:DescribeVolumes on *",
    ]
    for alias in ("night1.C", "night1.D"):
        result = report.snapshot(alias)
        assert result.verdict == "failed"
        assert "UnauthorizedOperation" in f"{result.error} {result.reason}"
    failed = [e for e in report.executions if e.status == "FAILED"]
    assert len(failed) == 2
    assert all("CreateVolumeFunctionRole is not" in (e.cause or "") for e in failed)
    # What the create step's Lambda raised: AWS's words.
    refusals = [
        i.message
        for i in simulation.functions.invocations
        if i.function == "CreateVolumeFunction" and i.error
    ]
    assert refusals
    for message in refusals:
        assert "You are not authorized to perform this operation. User: " in message
        assert (
            "assumed-role/CreateVolumeFunctionRole/CreateVolumeFunctionRole is not authorized "
            "to perform: ec2:DescribeVolumes on resource: * because no identity-based policy "
            "allows the ec2:DescribeVolumes action"
        ) in message
    # The volume was created before the refusal: the cleanup deleted it.
    assert report.volumes_left == []


def test_a_state_machine_that_may_not_invoke_its_function_fails_as_step_functions_does(
    tmp_path: Path,
) -> None:
    template = _template_without(tmp_path, "RestoreStateMachine", "InvokeOurFunctions")
    expect = {"executions": {"FAILED": 2}, "refused_calls": 2}
    report, _ = _run(_nightly(template=str(template), expect=expect))

    assert report.ok, report.failures
    for execution in report.executions:
        assert execution.error == "Lambda.AccessDeniedException"
        assert "is not authorized to perform: lambda:InvokeFunction" in (execution.cause or "")
    assert all(
        r.startswith("RestoreStateMachineRole lambda:InvokeFunction") for r in report.calls_refused
    )


def test_the_backup_calls_with_the_instance_policy_and_is_refused_what_it_lacks(
    tmp_path: Path,
) -> None:
    template = load_template(REPO_ROOT / "template.yaml")
    policy = template["Resources"]["BackupInstancePolicy"]["Properties"]["PolicyDocument"]
    # The policy is a JSON text under Fn::Sub: drop the statement letting it snapshot volumes.
    text, count = re.subn(
        r'\{\s*"Sid": "SnapshotVolumes".*?\},', "", policy["Fn::Sub"], count=1, flags=re.S
    )
    assert count == 1
    json.loads(re.sub(r"\$\{[^}]+\}", "X", text))  # still a policy
    policy["Fn::Sub"] = text
    for folder in ("functions", "statemachine"):
        (tmp_path / folder).symlink_to(REPO_ROOT / folder)
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(template))  # JSON is YAML: CloudFormation reads either

    report, _ = _run(_nightly(template=str(path)))

    # As documents/backup.ps1 does: each drive's refusal is reported (not retried: it is not
    # one of the script's retry codes), the other drives go on, and the backup fails.
    assert not report.ok
    (backup,) = report.backups
    assert not backup["ok"]
    assert backup["problems"] == [
        f"{drive}: not snapshotted: UnauthorizedOperation after 0 retries of the script's"
        for drive in ("C", "D")
    ]
    assert len(report.calls_refused) == 2
    for refused in report.calls_refused:
        assert refused.startswith("BackupInstancePolicy ec2:CreateSnapshot on ")
        assert "arn:aws:ec2:us-east-1:123456789012:volume/vol-" in refused
