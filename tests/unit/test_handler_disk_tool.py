"""Handlers run_disk_tool, disk_tool_result and plan_revert: the work done on the helper."""

import json
import os
from datetime import timedelta
from typing import Any

import pytest

from vss_restore.aws.ssm import Ssm
from vss_restore.clock import iso, now
from vss_restore.errors import (
    CheckFailed,
    CommandFailed,
    DiskNotFound,
    DiskToolReportInvalid,
    InvalidRequest,
    RevertFailed,
    RevertRefused,
    UnsafeParameter,
)
from vss_restore.handlers import disk_tool_result, plan_revert, run_disk_tool


def _sent(world: Any) -> list[dict[str, Any]]:
    return list(world.ssm.list_commands()["Commands"])


# --- run_disk_tool ---------------------------------------------------------------------


def test_inspect_sends_our_document_to_the_helper_with_the_volume(
    world: Any, lambda_context: Any
) -> None:
    volume_id = world.temporary_volume()

    result = run_disk_tool.handler(
        world.event("run_disk_tool-inspect", volume=volume_id), lambda_context
    )

    [command] = _sent(world)
    assert command["CommandId"] == result["command_id"]
    assert command["DocumentName"] == os.environ["DISK_TOOL_DOCUMENT"]
    assert command["InstanceIds"] == [world.helper_id]
    assert command["Parameters"] == {
        "Action": ["Inspect"],
        "VolumeId": [volume_id],
        "DiskNumber": [""],
        "ShadowCopyIds": [""],
        "DiskIdentity": [""],
        "ValidationScript": [""],
        "LastAction": [""],
    }
    assert command["Comment"] == f"vss-restore Inspect {volume_id} demo"


def test_check_sends_the_inspected_disk_its_identity_and_the_stacks_validation_script(
    world: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VALIDATION_SCRIPT", "C:\\vss-restore\\validate.ps1")
    volume_id = world.temporary_volume()
    event = world.event("run_disk_tool-check", volume=volume_id)

    run_disk_tool.handler(event, lambda_context)

    [command] = _sent(world)
    assert command["Parameters"] == {
        "Action": ["Check"],
        "VolumeId": [volume_id],
        "DiskNumber": [str(event["disk"]["number"])],
        "ShadowCopyIds": [""],
        "DiskIdentity": [event["disk"]["identity"]],
        "ValidationScript": ["C:\\vss-restore\\validate.ps1"],
        "LastAction": ["true"],  # the workflow detaches the disk next
    }


def test_a_validation_script_path_that_could_inject_code_sends_nothing(
    world: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VALIDATION_SCRIPT", "C:\\x.ps1'; Remove-Item C:\\ -Recurse; '")
    event = world.event("run_disk_tool-check", volume=world.temporary_volume())

    with pytest.raises(UnsafeParameter, match="ValidationScript"):
        run_disk_tool.handler(event, lambda_context)
    assert _sent(world) == []


def test_revert_sends_exactly_the_planned_disk_shadow_copies_and_identity(
    world: Any, lambda_context: Any
) -> None:
    volume_id = world.temporary_volume()
    event = world.event("run_disk_tool-revert", volume=volume_id)

    run_disk_tool.handler(event, lambda_context)

    [command] = _sent(world)
    assert command["DocumentName"] == os.environ["DISK_TOOL_DOCUMENT"]
    assert command["Parameters"] == {
        "Action": ["Revert"],
        "VolumeId": [volume_id],
        "DiskNumber": [str(event["plan"]["disk_number"])],
        "ShadowCopyIds": [",".join(event["plan"]["shadow_copy_ids"])],
        "DiskIdentity": [event["plan"]["disk_identity"]],
        "ValidationScript": [""],
        "LastAction": ["false"],  # a Check follows (CheckAfterRevert)
    }


def test_the_reverts_last_action_is_what_the_workflow_does_next_not_the_setting_read_again(
    world: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workflow chose no Check ($.source.check false), whatever the setting says now.
    monkeypatch.setenv("CHECK_AFTER_REVERT", "true")
    event = world.event("run_disk_tool-revert", volume=world.temporary_volume())
    event["check_follows"] = False

    run_disk_tool.handler(event, lambda_context)

    [command] = _sent(world)
    assert command["Parameters"]["LastAction"] == ["true"]


@pytest.mark.parametrize("value", [None, "false", 0])
def test_a_revert_without_a_clear_check_follows_sends_nothing(
    world: Any, lambda_context: Any, value: Any
) -> None:
    event = world.event("run_disk_tool-revert", volume=world.temporary_volume())
    event["check_follows"] = value

    with pytest.raises(InvalidRequest, match="check_follows"):
        run_disk_tool.handler(event, lambda_context)
    assert _sent(world) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("shadow_copy_ids", ["{6f1e0e7a-1111-4c5d-9e8f-000000000001}'; Remove-Item C:\\ #"]),
        ("disk_identity", "0x1A2B3C4D'; Stop-Computer #"),
        ("disk_number", 1000),
    ],
)
def test_a_plan_with_a_value_that_breaks_its_pattern_sends_nothing_to_the_helper(
    world: Any, lambda_context: Any, field: str, value: Any
) -> None:
    event = world.event("run_disk_tool-revert", volume=world.temporary_volume())
    event["plan"][field] = value

    with pytest.raises(UnsafeParameter, match="refusing to send"):
        run_disk_tool.handler(event, lambda_context)

    assert _sent(world) == []


def test_a_volume_id_that_is_not_a_volume_sends_nothing(world: Any, lambda_context: Any) -> None:
    event = world.event("run_disk_tool-inspect")
    event["volume_id"] = "vol-1'; Remove-Item C:\\ -Recurse #"

    with pytest.raises(InvalidRequest, match="volume_id"):
        run_disk_tool.handler(event, lambda_context)

    assert _sent(world) == []


def test_an_unknown_disk_tool_action_is_refused(world: Any, lambda_context: Any) -> None:
    event = world.event("run_disk_tool-inspect", volume=world.temporary_volume())
    event["action"] = "Format"

    with pytest.raises(InvalidRequest, match="unknown disk tool action 'Format'"):
        run_disk_tool.handler(event, lambda_context)

    assert _sent(world) == []


# --- disk_tool_result against moto -----------------------------------------------------


def test_a_command_that_succeeded_without_printing_a_report_is_an_invalid_report(
    world: Any, lambda_context: Any
) -> None:
    # moto answers Success with empty output: we never guess what the disk tool saw.
    volume_id = world.temporary_volume()
    sent = run_disk_tool.handler(
        world.event("run_disk_tool-inspect", volume=volume_id), lambda_context
    )
    event = world.event("disk_tool_result", volume=volume_id, command=sent["command_id"])

    with pytest.raises(DiskToolReportInvalid, match="printed no JSON report"):
        disk_tool_result.handler(event, lambda_context)


# --- disk_tool_result, the invocation's outcomes (stubbed GetCommandInvocation) ----------


@pytest.fixture
def invocation(stubbed: Any, sample: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Queue what GetCommandInvocation answers to the handler for the sample's command."""
    client, stubber = stubbed("ssm")
    monkeypatch.setattr(disk_tool_result, "Ssm", lambda: Ssm(client=client))
    event = sample("disk_tool_result")
    expected = {"CommandId": event["command_id"], "InstanceId": event["instance_id"]}

    def answer(status: str, stdout: str = "", details: str = "") -> None:
        stubber.add_response(
            "get_command_invocation",
            {
                **expected,
                "Status": status,
                "StatusDetails": details or status,
                "StandardOutputContent": stdout,
                "ResponseCode": 0 if status == "Success" else 1,
            },
            expected,
        )

    def not_yet_known() -> None:
        stubber.add_client_error(
            "get_command_invocation",
            service_error_code="InvocationDoesNotExist",
            http_status_code=400,
            expected_params=expected,
        )

    answer.not_yet_known = not_yet_known  # type: ignore[attr-defined]
    return answer


def _report(sample: Any, action: str = "Inspect", **changes: Any) -> str:
    """The disk tool's stdout: a log line, then the report (from the plan_revert sample)."""
    report = sample("plan_revert")["report"]
    report["action"] = action
    if action == "Revert":
        del report["partitions"], report["shadow_copies"]
        report.update(
            reverted=["{6f1e0e7a-1111-4c5d-9e8f-000000000001}"],
            identity_restored=report["disk"]["identity"],
            offline=True,
        )
    if action == "Check":
        del report["partitions"], report["shadow_copies"]
        partition = sample("plan_revert")["report"]["partitions"][0]
        volume = {
            "number": partition["number"],
            "volume_path": partition["volume_path"],
            "file_system": "NTFS",
            "scanner": "Repair-Volume",
            "scan_result": "NoErrorsFound",
            "scan_error": "",
            "passed": True,
        }
        report.update(
            volumes=[volume],
            validation=None,
            passed=True,
            identity_restored=report["disk"]["identity"],
            offline=True,
        )
    report.update(changes)
    if "shadow_copies" in report:
        report = _compact(report)
    return "Disk 2 is online\n" + json.dumps(report, separators=(",", ":"))


def _compact(report: dict[str, Any]) -> dict[str, Any]:
    """An Inspect report as the script prints it: shadow copies as `sets` and `copies`."""
    shadows = report.pop("shadow_copies")
    numbers = {p["volume_path"]: p["number"] for p in report["partitions"]}
    sets = list(dict.fromkeys(s["set_id"] for s in shadows))
    report["sets"] = sets
    report["copies"] = [
        {
            "i": s["id"],
            "s": sets.index(s["set_id"]),
            "p": numbers[s["volume_path"]],
            "t": s["install_date"],
            "f": ("p" if s["persistent"] else "") + ("c" if s["client_accessible"] else ""),
        }
        for s in shadows
    ]
    return report


def test_right_after_sending_an_unknown_invocation_is_looked_at_again(
    invocation: Any, sample: Any, lambda_context: Any
) -> None:
    invocation.not_yet_known()

    result = disk_tool_result.handler(sample("disk_tool_result"), lambda_context)

    assert (result["ready"], result["attempt"], result["report"]) == (False, 1, None)
    assert result["wait_seconds"] > 0


@pytest.mark.parametrize("status", ["Pending", "InProgress", "Delayed"])
def test_a_command_still_running_is_looked_at_again(
    invocation: Any, sample: Any, lambda_context: Any, status: str
) -> None:
    invocation(status)
    started = iso(now() - timedelta(minutes=1))
    event = sample("disk_tool_result")
    event["progress"]["inspect"] = {"ready": False, "attempt": 1, "since": started}

    result = disk_tool_result.handler(event, lambda_context)

    assert (result["ready"], result["attempt"], result["since"]) == (False, 2, started)


def test_a_finished_inspection_returns_its_validated_report(
    invocation: Any, sample: Any, lambda_context: Any
) -> None:
    invocation("Success", _report(sample))

    result = disk_tool_result.handler(sample("disk_tool_result"), lambda_context)

    assert result["ready"] is True
    assert result["report"] == sample("plan_revert")["report"]


def test_an_inspection_that_found_no_disk_fails_with_the_windows_error(
    invocation: Any, sample: Any, lambda_context: Any
) -> None:
    invocation("Success", _report(sample, ok=False, disk=None, error="no disk has serial vol0123"))

    with pytest.raises(DiskNotFound, match="no disk has serial vol0123"):
        disk_tool_result.handler(sample("disk_tool_result"), lambda_context)


def test_a_failed_revert_fails_with_the_windows_error_text(
    invocation: Any, sample: Any, lambda_context: Any
) -> None:
    invocation("Failed", _report(sample, "Revert", ok=False, error="VSS_E_OBJECT_NOT_FOUND"))
    event = sample("disk_tool_result")
    event["action"] = "Revert"

    with pytest.raises(RevertFailed, match="VSS_E_OBJECT_NOT_FOUND"):
        disk_tool_result.handler(event, lambda_context)


def test_a_failed_revert_whose_report_ssm_cut_says_the_report_was_cut(
    invocation: Any, sample: Any, lambda_context: Any
) -> None:
    windows_error = "VSS_E_OBJECT_NOT_FOUND " * 2000
    stdout = _report(sample, "Revert", ok=False, error=windows_error)[:24_000]
    invocation("Failed", stdout)
    event = sample("disk_tool_result")
    event["action"] = "Revert"

    with pytest.raises(RevertFailed, match=r"ended Failed: the report was cut") as failed:
        disk_tool_result.handler(event, lambda_context)

    assert "VSS_E_OBJECT_NOT_FOUND" not in str(failed.value)  # no guess from half a report


def test_a_command_that_failed_before_reporting_says_what_it_printed(
    invocation: Any, sample: Any, lambda_context: Any
) -> None:
    invocation("Failed", "Get-Disk : Access is denied.", details="Failed")

    with pytest.raises(CommandFailed, match=r"ended Failed: Get-Disk : Access is denied\."):
        disk_tool_result.handler(sample("disk_tool_result"), lambda_context)


@pytest.mark.parametrize(
    ("status", "details"), [("TimedOut", "DeliveryTimedOut"), ("Cancelled", "Cancelled")]
)
def test_a_command_that_never_ran_fails_naming_why(
    invocation: Any, sample: Any, lambda_context: Any, status: str, details: str
) -> None:
    invocation(status, details=details)

    with pytest.raises(CommandFailed, match=f"ended {details}: no output"):
        disk_tool_result.handler(sample("disk_tool_result"), lambda_context)


def test_an_unknown_disk_tool_action_is_refused_before_looking(
    sample: Any, lambda_context: Any
) -> None:
    event = sample("disk_tool_result")
    event["action"] = "Format"

    with pytest.raises(InvalidRequest, match="unknown disk tool action 'Format'"):
        disk_tool_result.handler(event, lambda_context)


# --- plan_revert -----------------------------------------------------------------------


def test_the_plan_reverts_the_recorded_shadow_copy_on_the_inspected_disk(
    sample: Any, lambda_context: Any
) -> None:
    event = sample("plan_revert")

    plan = plan_revert.handler(event, lambda_context)

    (partition,) = event["report"]["partitions"]
    assert json.loads(json.dumps(plan)) == {
        "disk_number": 2,
        "disk_identity": event["report"]["disk"]["identity"],
        "shadow_copy_ids": [event["source"]["shadow_copy_id"]],
        "rule": "recorded-shadow-copy-id",
        "volumes": [
            {
                "partition": partition["number"],
                "volume_path": partition["volume_path"],
                "file_system": "NTFS",
                "drive": "D",
                "done": "reverted-recorded",
                "shadow_copy_id": event["source"]["shadow_copy_id"],
                "shadow_copy_date": event["report"]["shadow_copies"][0]["install_date"],
            }
        ],
    }


def test_without_recorded_ids_the_plan_takes_the_newest_shadow_copy(
    sample: Any, lambda_context: Any
) -> None:
    event = sample("plan_revert")
    event["source"].update(shadow_copy_id="", shadow_set_id="")

    assert plan_revert.handler(event, lambda_context)["rule"] == "newest-on-each-volume"


def test_the_plan_refuses_the_helpers_system_disk(sample: Any, lambda_context: Any) -> None:
    event = sample("plan_revert")
    event["report"]["disk"]["is_system"] = True

    with pytest.raises(RevertRefused, match="system or boot disk"):
        plan_revert.handler(event, lambda_context)


def _check_event(sample: Any) -> dict[str, Any]:
    event = sample("disk_tool_result")
    event["action"] = "Check"
    return event


def test_a_check_that_found_nothing_wrong_returns_its_report(
    invocation: Any, sample: Any, lambda_context: Any
) -> None:
    invocation("Success", _report(sample, "Check"))

    result = disk_tool_result.handler(_check_event(sample), lambda_context)

    assert result["ready"] is True
    assert result["report"]["volumes"][0]["scan_result"] == "NoErrorsFound"


def test_a_check_whose_scan_found_errors_fails_naming_the_volume_and_the_finding(
    invocation: Any, sample: Any, lambda_context: Any
) -> None:
    stdout = _report(sample, "Check", passed=False)
    report = json.loads(stdout.splitlines()[-1])
    report["volumes"][0].update(scan_result="SpotFixNeeded", passed=False)
    invocation("Success", json.dumps(report))

    with pytest.raises(CheckFailed, match=r"Volume\{a1b2c3d4.*NTFS: SpotFixNeeded"):
        disk_tool_result.handler(_check_event(sample), lambda_context)


def test_a_failing_validation_script_fails_the_check_with_its_exit_code_and_output(
    invocation: Any, sample: Any, lambda_context: Any
) -> None:
    validation = {
        "script": "C:\\vss-restore\\validate.ps1",
        "exit_code": 3,
        "passed": False,
        "output": "database page checksum mismatch",
    }
    invocation("Success", _report(sample, "Check", validation=validation, passed=False))

    with pytest.raises(CheckFailed, match=r"validate\.ps1 exited 3: database page checksum"):
        disk_tool_result.handler(_check_event(sample), lambda_context)


def test_a_check_that_windows_could_not_run_fails_with_the_windows_error(
    invocation: Any, sample: Any, lambda_context: Any
) -> None:
    stdout = _report(sample, "Check", ok=False, error="Access is denied. (0x80070005)")
    invocation("Failed", stdout)

    with pytest.raises(CheckFailed, match="Access is denied"):
        disk_tool_result.handler(_check_event(sample), lambda_context)
