"""The parts of the kit only a real account runs: sam deploy, the fixture stack on
CloudFormation, and the Windows side through SSM Run Command (e2e/scripts/*.ps1). The
simulator's twin of these two classes is tests/e2e/twin.py."""

import base64
import functools
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from e2e.account import KIT_TAG, Account, KitFailed
from e2e.kit import Files, Fixture, Say, Service

HERE = Path(__file__).parent
SCRIPTS = HERE / "scripts"
FIXTURE_TEMPLATE = HERE / "fixture.yaml"
RUN_POWERSHELL = "AWS-RunPowerShellScript"
TERMINAL = {"Success", "Cancelled", "TimedOut", "Failed"}
# Each value the kit pastes into a script, and what it may hold: nothing that can close the
# single quotes it is pasted in.
PARAMETER_PATTERNS = {
    "Drive": re.compile(r"^[D-Z]$"),
    "FilesJson": re.compile(r"^[A-Za-z0-9+/=]{1,20000}$"),
    "WaitSeconds": re.compile(r"^[0-9]{1,5}$"),
    "VolumeId": re.compile(r"^vol-[0-9a-f]{8,17}$"),
}


def script(name: str, **parameters: str) -> str:
    """The script's text with its parameters assigned above it, each checked first."""
    lines = []
    for key, value in parameters.items():
        if not PARAMETER_PATTERNS[key].match(value):
            raise ValueError(f"{name}: {key}={value!r} does not match its pattern")
        lines.append(f"${key} = '{value}'")
    return "\n".join([*lines, (SCRIPTS / name).read_text(encoding="utf-8")])


def files_json(files: Files) -> str:
    inner = {name: base64.b64encode(data).decode() for name, data in files.items()}
    return base64.b64encode(json.dumps(inner).encode()).decode()


def last_json_line(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            found: dict[str, Any] = json.loads(line)
            return found
    raise KitFailed(f"no JSON report in the command's output: {stdout[-500:]!r}")


class SsmWindows:
    """The Windows side through SSM Run Command: each step a tiny .ps1 of e2e/scripts."""

    def __init__(self, account: Account, say: Say) -> None:
        self.account = account
        self.say = say
        self.late_writer: tuple[str, str] | None = None  # (command, instance)

    def _send(
        self, instance_id: str, document: str, parameters: Mapping[str, Sequence[str]]
    ) -> str:
        sent = self.account.ssm.send_command(
            DocumentName=document,
            InstanceIds=[instance_id],
            Parameters={k: list(v) for k, v in parameters.items()},
            Comment="vss-restore e2e kit",
        )
        return str(sent["Command"]["CommandId"])

    def _invocation(self, command_id: str, instance_id: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.account.ssm.get_command_invocation(
                CommandId=command_id, InstanceId=instance_id
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "InvocationDoesNotExist":
                return None  # not yet (FIELD-NOTES §5)
            raise
        return found

    def _wait(self, command_id: str, instance_id: str, timeout: float) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            found = self._invocation(command_id, instance_id)
            return found if found and found["Status"] in TERMINAL else None

        invocation: dict[str, Any] = self.account.wait_for(
            f"command {command_id} on {instance_id}", ended, timeout=timeout, every=5
        )
        if invocation["Status"] != "Success":
            raise KitFailed(
                f"command {command_id} on {instance_id}: {invocation['Status']}: "
                f"{invocation.get('StandardErrorContent', '')[-1000:]}"
                f"{invocation.get('StandardOutputContent', '')[-1000:]}"
            )
        return invocation

    def _run(self, instance_id: str, text: str, timeout: int) -> dict[str, Any]:
        command = self._send(
            instance_id,
            RUN_POWERSHELL,
            {"commands": [text], "executionTimeout": [str(timeout)]},
        )
        invocation = self._wait(command, instance_id, timeout + 600)
        return last_json_line(invocation["StandardOutputContent"])

    def write_files(self, instance_id: str, drive: str, files: Files) -> None:
        self._run(
            instance_id, script("write-files.ps1", Drive=drive, FilesJson=files_json(files)), 300
        )

    def start_late_writer(self, instance_id: str, drive: str, files: Files) -> None:
        text = script(
            "late-writer.ps1", Drive=drive, FilesJson=files_json(files), WaitSeconds="1200"
        )
        command = self._send(
            instance_id, RUN_POWERSHELL, {"commands": [text], "executionTimeout": ["1500"]}
        )
        self.late_writer = (command, instance_id)

        def watching() -> bool:
            found = self._invocation(command, instance_id)
            if found and found["Status"] in TERMINAL:
                raise KitFailed(f"the late writer ended before the backup: {found['Status']}")
            return bool(found and found["Status"] == "InProgress")

        self.account.wait_for("the late writer running", watching, timeout=600, every=2)
        # It lists the shadow copies there before it watches for a new one.
        self.account.clock.sleep(15)

    def run_backup(self, instance_id: str, document: str) -> list[str]:
        command = self._send(instance_id, document, {})
        invocation = self._wait(command, instance_id, 1800 + 600)
        summary = last_json_line(invocation["StandardOutputContent"])
        if not summary.get("ok"):
            raise KitFailed(f"the backup failed: {summary.get('error')}: {summary}")
        return [str(s["snapshot_id"]) for s in summary["snapshots"] if s.get("snapshot_id")]

    def shadow_time_files(self, instance_id: str) -> dict[str, str]:
        if self.late_writer is None or self.late_writer[1] != instance_id:
            raise KitFailed(f"no late writer on {instance_id}")
        report = last_json_line(self._wait(*self.late_writer, 1500 + 600)["StandardOutputContent"])
        self.say(
            f"late writes {report['written_after_ms']} ms after shadow copy "
            f"{report['shadow_copy_id']} appeared"
        )
        return {str(k): str(v) for k, v in report["files"].items()}

    def files_on(self, helper_id: str, volume_id: str) -> dict[str, str]:
        report = self._run(helper_id, script("read-files.ps1", VolumeId=volume_id), 900)
        return {str(k): str(v) for k, v in report["files"].items()}


class AwsStage:
    """The two stacks: vss-restore by sam deploy (`make build` first), the fixture by
    CloudFormation. Stack names and the VSS tag carry the run ID, so the kit's stack restores
    only the kit's snapshots, whatever else the account runs."""

    def __init__(self, account: Account, run_id: str, say: Say) -> None:
        self.account = account
        self.run_id = run_id
        self.say = say
        self.service_stack = f"vss-restore-e2e-{run_id}"
        self.fixture_stack = f"vss-restore-e2e-fixture-{run_id}"
        self.vss_tag = ("ConsistentSnapshot", f"WindowsVSS-e2e-{run_id}")

    def stack_names(self) -> list[str]:
        return [self.service_stack, self.fixture_stack]

    def _sam_deploy(self, helper: str) -> None:
        overrides = [
            f"VssTagKey={self.vss_tag[0]}",
            f"VssTagValue={self.vss_tag[1]}",
            "HelperMode=named",
            f"HelperInstanceIds={helper}",
            "BackupEnabled=false",
        ]
        command = [
            "sam", "deploy",
            "--stack-name", self.service_stack,
            "--region", self.account.region,
            "--resolve-s3", "--s3-prefix", self.service_stack,
            "--capabilities", "CAPABILITY_IAM",
            "--no-confirm-changeset", "--no-fail-on-empty-changeset",
            "--parameter-overrides", *overrides,
            "--tags", f"{KIT_TAG}={self.run_id}",
        ]  # fmt: skip
        if subprocess.run(command, check=False).returncode != 0:
            raise KitFailed(f"sam deploy of {self.service_stack} failed (its output is above)")

    def deploy_service(self) -> Service:
        self._sam_deploy(helper="")
        outputs = self.account.stack_outputs(self.service_stack)
        return Service(
            self.service_stack, outputs["BackupDocumentName"], outputs["BackupInstancePolicyArn"]
        )

    def deploy_fixture(self, service: Service) -> Fixture:
        cfn = self.account.cloudformation
        parameters = {
            "RunId": self.run_id,
            "BackupInstancePolicyArn": service.backup_policy_arn,
            "VssTagKey": self.vss_tag[0],
            "VssTagValue": self.vss_tag[1],
        }
        cfn.create_stack(
            StackName=self.fixture_stack,
            TemplateBody=FIXTURE_TEMPLATE.read_text(encoding="utf-8"),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
            Tags=[{"Key": KIT_TAG, "Value": self.run_id}],
        )
        self.say(f"waiting for {self.fixture_stack} (Windows boot, D: formatted, AWS.Tools.EC2)")
        cfn.get_waiter("stack_create_complete").wait(
            StackName=self.fixture_stack, WaiterConfig={"Delay": 30, "MaxAttempts": 100}
        )
        outputs = self.account.stack_outputs(self.fixture_stack)
        source, helper = outputs["SourceInstanceId"], outputs["HelperInstanceId"]
        reservations = self.account.ec2.describe_instances(InstanceIds=[source])["Reservations"]
        mappings = reservations[0]["Instances"][0]["BlockDeviceMappings"]
        data = [m["Ebs"]["VolumeId"] for m in mappings if m["DeviceName"] == outputs["DataDevice"]]
        if len(data) != 1:
            raise KitFailed(f"{source} has no volume at {outputs['DataDevice']}")
        for instance_id in (source, helper):
            self.account.wait_for(
                f"{instance_id} online in SSM",
                functools.partial(self._online, instance_id),
                timeout=1800,
            )
        return Fixture(self.fixture_stack, source, data[0], "D", helper)

    def _online(self, instance_id: str) -> bool:
        found = self.account.ssm.describe_instance_information(
            Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
        )["InstanceInformationList"]
        return bool(found and found[0].get("PingStatus") == "Online")

    def name_helper(self, service: Service, fixture: Fixture) -> None:
        self.say(f"naming {fixture.helper_instance_id} in HelperInstanceIds")
        self._sam_deploy(helper=fixture.helper_instance_id)

    def _delete(self, stack_name: str) -> None:
        if not self.account.stack_exists(stack_name):
            return
        cfn = self.account.cloudformation
        cfn.delete_stack(StackName=stack_name)
        cfn.get_waiter("stack_delete_complete").wait(
            StackName=stack_name, WaiterConfig={"Delay": 30, "MaxAttempts": 80}
        )

    def remove_fixture(self) -> None:
        self._delete(self.fixture_stack)

    def remove_service(self) -> None:
        self._delete(self.service_stack)
