"""Run Command as the helper's agent answers it: eventual consistency, status, the report."""

import json

import pytest
from botocore.exceptions import ClientError

from simulator.disks import windows_disk
from simulator.ssm import REBOOT_SECONDS, STDERR_LIMIT, STDOUT_LIMIT
from simulator.windows import ToolRun
from tests.simulator.harness import DISK_TOOL, Aws
from vss_restore.errors import DiskToolReportCut
from vss_restore.logic import disk_tool

IDENTITY = "{5B0C6A1E-3D2F-4E8A-9B7C-1A2B3C4D5E6F}"


def _attached_volume(aws: Aws) -> str:
    """A formatted data volume (E:), attached to the helper as disk 1."""
    volume_id = str(aws.ec2.create_volume(AvailabilityZone=aws.zone, Size=8)["VolumeId"])
    aws.world.volume_contents[volume_id] = windows_disk(
        size_gib=8, partition_style="GPT", drive_letters=["E"], system=False, identity=IDENTITY
    )
    aws.clock.advance(2)
    aws.ec2.attach_volume(VolumeId=volume_id, InstanceId=aws.helper_id, Device="xvdf")
    aws.clock.advance(4)
    return volume_id


def _send(aws: Aws, **parameters: str) -> str:
    return str(
        aws.ssm.send_command(
            DocumentName=DISK_TOOL,
            InstanceIds=[aws.helper_id],
            Parameters={name: [value] for name, value in parameters.items()},
        )["Command"]["CommandId"]
    )


def _invocation(aws: Aws, command_id: str) -> dict[str, object]:
    return dict(aws.ssm.get_command_invocation(CommandId=command_id, InstanceId=aws.helper_id))


def test_the_helper_is_an_online_windows_managed_instance(aws: Aws) -> None:
    found = aws.ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [aws.helper_id]}]
    )["InstanceInformationList"]
    assert [(i["InstanceId"], i["PingStatus"], i["PlatformType"]) for i in found] == [
        (aws.helper_id, "Online", "Windows")
    ]
    none = aws.ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": ["i-0000000000000000f"]}]
    )["InstanceInformationList"]
    assert none == []
    (instance,) = aws.ec2.describe_instances(InstanceIds=[aws.helper_id])["Reservations"][0][
        "Instances"
    ]
    assert instance["Platform"] == "windows"


def test_an_inspect_is_unknown_then_in_progress_then_reports(aws: Aws) -> None:
    volume_id = _attached_volume(aws)
    command_id = _send(aws, Action="Inspect", VolumeId=volume_id)
    with pytest.raises(ClientError, match="InvocationDoesNotExist"):
        _invocation(aws, command_id)
    aws.clock.advance(1.5)
    assert _invocation(aws, command_id)["Status"] == "InProgress"
    aws.clock.advance(20)
    done = _invocation(aws, command_id)
    assert (done["Status"], done["ResponseCode"]) == ("Success", 0)
    report = json.loads(str(done["StandardOutputContent"]).splitlines()[-1])
    assert report["action"] == "Inspect"
    assert report["volume_id"] == volume_id
    assert report["disk"]["number"] == 1  # the helper's system disk is 0
    listed = aws.ssm.list_command_invocations(CommandId=command_id, Details=True)
    (entry,) = listed["CommandInvocations"]
    assert entry["Status"] == "Success"
    assert entry["CommandPlugins"][0]["Name"] == "DiskTool"


def test_a_parameter_breaking_its_allowed_pattern_fails_on_the_agent(aws: Aws) -> None:
    command_id = _send(aws, Action="Format", VolumeId="vol-0123456789abcdef0")
    aws.clock.advance(10)
    failed = _invocation(aws, command_id)
    assert (failed["Status"], failed["ResponseCode"]) == ("Failed", 1)
    assert "allowedPattern" in str(failed["StandardErrorContent"])


def test_a_validation_script_path_that_could_break_out_of_its_quotes_is_refused(
    aws: Aws,
) -> None:
    volume_id = _attached_volume(aws)
    command_id = _send(
        aws,
        Action="Check",
        VolumeId=volume_id,
        DiskNumber="1",
        DiskIdentity=IDENTITY,
        ValidationScript="C:\\x.ps1'; Remove-Item -Recurse C:\\ #",
    )
    aws.clock.advance(10)
    failed = _invocation(aws, command_id)
    assert (failed["Status"], failed["ResponseCode"]) == ("Failed", 1)
    assert 'Parameter "ValidationScript"' in str(failed["StandardErrorContent"])
    assert aws.agents.log[-1].run is None  # the script never ran


@pytest.mark.parametrize(
    "aws", [[{"windows": "Check", "scan_result": "FullRepairNeeded"}]], indirect=True
)
def test_a_check_runs_for_check_seconds_and_a_fault_decides_its_first_scan(aws: Aws) -> None:
    volume_id = _attached_volume(aws)
    first, second = (
        _send(aws, Action="Check", VolumeId=volume_id, DiskNumber="1", DiskIdentity=IDENTITY)
        for _ in range(2)
    )
    aws.clock.advance(1 + aws.world.timing.check_seconds - 1)
    assert _invocation(aws, first)["Status"] == "InProgress"
    aws.clock.advance(1)
    done = _invocation(aws, first)
    assert (done["Status"], done["ResponseCode"]) == ("Success", 0)
    report = json.loads(str(done["StandardOutputContent"]).splitlines()[-1])
    # Repair-Volume refused on the read-only disk: chkdsk, read-only, finds the damage.
    assert [(v["scanner"], v["scan_result"]) for v in report["volumes"]] == [
        ("chkdsk", "ErrorsFoundOrNotChecked")
    ]
    assert report["passed"] is False
    aws.clock.advance(aws.world.timing.check_seconds)
    again = json.loads(str(_invocation(aws, second)["StandardOutputContent"]).splitlines()[-1])
    assert [v["scan_result"] for v in again["volumes"]] == ["NoErrorsFound"]
    assert aws.agents.disk_tool_commands() == {"Check": 2}


def test_sendcommand_refuses_unknown_parameters_and_unmanaged_instances(aws: Aws) -> None:
    with pytest.raises(ClientError, match="InvalidParameters"):
        _send(aws, Action="Inspect", VolumeId="vol-0123456789abcdef0", Force="yes")
    with pytest.raises(ClientError, match="InvalidInstanceId"):
        aws.ssm.send_command(DocumentName=DISK_TOOL, InstanceIds=["i-0000000000000000f"])
    with pytest.raises(ClientError, match="InvalidDocument"):
        aws.ssm.send_command(DocumentName="NoSuchDocument", InstanceIds=[aws.helper_id])


def test_a_wrong_plugin_name_is_refused(aws: Aws) -> None:
    command_id = _send(aws, Action="Inspect", VolumeId="vol-0123456789abcdef0")
    aws.clock.advance(2)
    with pytest.raises(ClientError, match="InvalidPluginName"):
        aws.ssm.get_command_invocation(
            CommandId=command_id, InstanceId=aws.helper_id, PluginName="aws:runShellScript"
        )


def test_an_offline_helper_never_runs_the_command(aws: Aws) -> None:
    aws.world.managed[aws.helper_id].ping_status = "ConnectionLost"
    command_id = str(
        aws.ssm.send_command(
            DocumentName=DISK_TOOL,
            InstanceIds=[aws.helper_id],
            Parameters={"Action": ["Inspect"], "VolumeId": ["vol-0123456789abcdef0"]},
            TimeoutSeconds=600,
        )["Command"]["CommandId"]
    )
    aws.clock.advance(300)
    assert _invocation(aws, command_id)["Status"] == "Pending"
    aws.clock.advance(301)
    timed_out = _invocation(aws, command_id)
    assert (timed_out["Status"], timed_out["StatusDetails"]) == ("TimedOut", "DeliveryTimedOut")


@pytest.mark.parametrize(
    "aws",
    [[{"windows": "Revert", "error": "VSS_E_VOLUME_IN_USE: the volume is in use"}]],
    indirect=True,
)
def test_a_windows_fault_fails_the_revert_with_that_text(aws: Aws) -> None:
    volume_id = _attached_volume(aws)
    command_id = _send(
        aws,
        Action="Revert",
        VolumeId=volume_id,
        DiskNumber="1",
        ShadowCopyIds="{6f1e0e7a-1111-4c5d-9e8f-000000000001}",
        DiskIdentity=IDENTITY,
    )
    aws.clock.advance(30)
    failed = _invocation(aws, command_id)
    assert failed["Status"] == "Failed"
    report = json.loads(str(failed["StandardOutputContent"]).splitlines()[-1])
    assert report["ok"] is False
    assert report["error"] == "VSS_E_VOLUME_IN_USE: the volume is in use"


@pytest.mark.parametrize(
    "aws", [[{"windows": "Check", "error": "Repair-Volume : Access is denied."}]], indirect=True
)
def test_a_windows_fault_fails_the_check_before_it_touches_the_disk(aws: Aws) -> None:
    volume_id = _attached_volume(aws)
    command_id = _send(
        aws, Action="Check", VolumeId=volume_id, DiskNumber="1", DiskIdentity=IDENTITY
    )
    aws.clock.advance(1 + aws.world.timing.command_failure_seconds)
    failed = _invocation(aws, command_id)
    assert (failed["Status"], failed["ResponseCode"]) == ("Failed", 1)
    report = json.loads(str(failed["StandardOutputContent"]).splitlines()[-1])
    assert (report["ok"], report["error"]) == (False, "Repair-Volume : Access is denied.")
    assert (report["volumes"], report["passed"], report["offline"]) == ([], False, True)


def test_two_commands_on_one_instance_run_side_by_side(aws: Aws) -> None:
    volume_id = _attached_volume(aws)
    first = _send(aws, Action="Inspect", VolumeId=volume_id)
    second = _send(aws, Action="Inspect", VolumeId=volume_id)
    aws.clock.advance(15)
    assert [_invocation(aws, c)["Status"] for c in (first, second)] == ["InProgress"] * 2
    aws.clock.advance(6)
    # Both run; the disk tool's mutex makes the second's Inspect wait for the first's.
    assert [_invocation(aws, c)["Status"] for c in (first, second)] == ["Success", "InProgress"]
    aws.clock.advance(20)
    done = [_invocation(aws, c) for c in (first, second)]
    assert [d["Status"] for d in done] == ["Success"] * 2
    assert done[0]["ExecutionStartDateTime"] == done[1]["ExecutionStartDateTime"]
    assert aws.agents.peak_running(aws.helper_id) == 2
    held = [(i.acquired_at, i.done_at) for i in aws.agents.log[-2:]]
    assert held[0][1] == held[1][0]  # one action after the other


def test_a_sixth_command_waits_pending_until_one_of_the_five_workers_is_free(aws: Aws) -> None:
    volume_id = _attached_volume(aws)
    # Inspects take 20 s; the first ends 6 s before the others, so its worker frees first.
    commands = [_send(aws, Action="Inspect", VolumeId=volume_id)]
    aws.clock.advance(6)
    commands += [_send(aws, Action="Inspect", VolumeId=volume_id) for _ in range(5)]
    aws.clock.advance(14)
    sixth = _invocation(aws, commands[5])
    assert [_invocation(aws, c)["Status"] for c in commands[:5]] == ["InProgress"] * 5
    assert (sixth["Status"], sixth["ResponseCode"], sixth["ExecutionStartDateTime"]) == (
        "Pending",
        -1,
        "",
    )
    aws.clock.advance(1)
    first, sixth = _invocation(aws, commands[0]), _invocation(aws, commands[5])
    assert first["Status"] == "Success"
    assert sixth["Status"] == "InProgress"
    assert sixth["ExecutionStartDateTime"] == first["ExecutionEndDateTime"]
    aws.clock.advance(110)  # their Inspects take turns under the mutex: 20 s each
    assert [_invocation(aws, c)["Status"] for c in commands] == ["Success"] * 6
    assert aws.agents.peak_running(aws.helper_id) == 5


@pytest.mark.parametrize(
    "aws", [[{"windows": "Inspect", "error": "Get-Disk : " + "x" * 30_000}]], indirect=True
)
def test_stdout_keeps_its_first_24000_characters_and_stderr_its_first_8000(aws: Aws) -> None:
    volume_id = _attached_volume(aws)
    command_id = _send(aws, Action="Inspect", VolumeId=volume_id)
    aws.clock.advance(10)
    failed = _invocation(aws, command_id)
    written = aws.agents.log[-1]
    assert (STDOUT_LIMIT, STDERR_LIMIT) == (24_000, 8_000)
    assert len(written.stdout) > STDOUT_LIMIT
    assert len(written.stderr) > STDERR_LIMIT
    assert failed["StandardOutputContent"] == written.stdout[:STDOUT_LIMIT]
    assert failed["StandardErrorContent"] == written.stderr[:STDERR_LIMIT]
    # The report was the last line: what is left of it is no JSON, and the workflow,
    # which knows how much SSM keeps, says the report was cut.
    assert disk_tool.STDOUT_KEPT == STDOUT_LIMIT
    with pytest.raises(DiskToolReportCut, match="the report was cut"):
        disk_tool.parse_report(str(failed["StandardOutputContent"]), "Inspect", volume_id)


def test_a_script_exiting_3010_makes_the_agent_reboot_the_helper_and_run_it_again(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The disk tool never exits 3010 (its last statements are exit 0 / exit 1); were it to,
    # the agent would reboot the helper and run the script again (AWS, "Handling reboots
    # when running commands").
    volume_id = _attached_volume(aws)
    codes = iter([3010, 0])
    monkeypatch.setattr(ToolRun, "exit_code", property(lambda run: next(codes)))
    command_id = _send(aws, Action="Inspect", VolumeId=volume_id)
    aws.clock.advance(2 + aws.world.timing.inspect_seconds)
    assert _invocation(aws, command_id)["Status"] == "InProgress"
    (host,) = [h for h in aws.world.hosts.values() if h.disk_of(volume_id)]
    assert host.reboots == [f"command {command_id} exited 3010"]
    aws.clock.advance(REBOOT_SECONDS + aws.world.timing.inspect_seconds + 1)
    assert _invocation(aws, command_id)["Status"] == "Success"
    assert len(host.reboots) == 1
