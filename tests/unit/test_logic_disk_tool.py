"""The disk tool's contract: checked parameters out, validated report back (logic/disk_tool.py)."""

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from vss_restore.errors import DiskToolReportCut, DiskToolReportInvalid, UnsafeParameter
from vss_restore.logic.disk_tool import (
    CHECK,
    INSPECT,
    REVERT,
    STDOUT_KEPT,
    parameters,
    parse_report,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "disk-tool.md"
VOLUME = "vol-0a4064b39e5f534a2"
SHADOW = "{6f1e0e7a-1111-4c5d-9e8f-000000000001}"
GUID = "{5B0C6A1E-3D2F-4E8A-9B7C-1A2B3C4D5E6F}"


@pytest.fixture
def inspect_report() -> dict[str, Any]:
    """The Inspect example of docs/disk-tool.md, the contract's one stated example."""
    block = re.search(r"Example \(Inspect\):\s*```json\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert block, "docs/disk-tool.md has no Inspect example"
    report: dict[str, Any] = json.loads(block.group(1))
    return report


@pytest.fixture
def revert_report(inspect_report: dict[str, Any]) -> dict[str, Any]:
    listed = {"partitions", "sets", "copies"}
    report = {k: v for k, v in inspect_report.items() if k not in listed}
    report["action"] = REVERT
    report.update(reverted=[SHADOW], identity_restored=report["disk"]["identity"], offline=True)
    return report


def printed(*reports: dict[str, Any], before: str = "", after: str = "") -> str:
    """Stdout as the script prints it: log lines, then one compact JSON line per report."""
    lines = [before] + [json.dumps(report, separators=(",", ":")) for report in reports]
    return "\n".join([*lines, after])


def test_inspect_parameters_carry_the_volume_and_empty_revert_only_values() -> None:
    assert parameters(INSPECT, VOLUME) == {
        "Action": ["Inspect"],
        "VolumeId": [VOLUME],
        "DiskNumber": [""],
        "ShadowCopyIds": [""],
        "DiskIdentity": [""],
        "ValidationScript": [""],
        "LastAction": [""],
    }


def test_revert_parameters_carry_the_disk_the_shadow_copies_and_the_identity() -> None:
    second = "{6f1e0e7a-1111-4c5d-9e8f-000000000002}"

    sent = parameters(
        REVERT, VOLUME, disk_number=2, shadow_copy_ids=(SHADOW, second), disk_identity=GUID
    )

    assert sent["DiskNumber"] == ["2"]
    assert sent["ShadowCopyIds"] == [f"{SHADOW},{second}"]
    assert sent["DiskIdentity"] == [GUID]


def test_an_mbr_signature_is_a_valid_identity_to_put_back() -> None:
    assert parameters(REVERT, VOLUME, disk_identity="0x1A2B3C4D")["DiskIdentity"] == ["0x1A2B3C4D"]


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("VolumeId", {"volume_id": "vol-1'; Remove-Item C:\\ -Recurse #"}),
        ("VolumeId", {"volume_id": "vol-0a4064b39e5f534a2 -and $true"}),
        ("Action", {"action": "Inspect'; Stop-Computer #"}),
        ("Action", {"action": "Delete"}),
        ("DiskNumber", {"disk_number": 1000}),
        ("DiskNumber", {"disk_number": -1}),
        ("ShadowCopyIds", {"shadow_copy_ids": (SHADOW + "'; Remove-Item C:\\ #",)}),
        ("ShadowCopyIds", {"shadow_copy_ids": (SHADOW, "")}),
        ("DiskIdentity", {"disk_identity": "0x1A2B3C4D'; whoami #"}),
        ("DiskIdentity", {"disk_identity": "0x1A2B"}),
    ],
)
def test_a_value_that_breaks_its_pattern_is_refused_before_it_reaches_powershell(
    name: str, call: dict[str, Any]
) -> None:
    arguments: dict[str, Any] = {"action": REVERT, "volume_id": VOLUME, **call}
    action, volume_id = arguments.pop("action"), arguments.pop("volume_id")

    with pytest.raises(UnsafeParameter, match=f"refusing to send {name}="):
        parameters(action, volume_id, **arguments)


@pytest.mark.parametrize(
    "call",
    [
        {"volume_id": VOLUME + "\n"},
        {"disk_identity": GUID + "\n"},
        {"shadow_copy_ids": (SHADOW + "\n",)},
    ],
    ids=["volume", "identity", "shadow-copy"],
)
def test_a_value_with_a_trailing_newline_is_refused_before_it_reaches_powershell(
    call: dict[str, Any],
) -> None:
    # Python's `$` also matches before a final newline: the patterns must hold the whole value.
    arguments = dict(call)
    volume_id = arguments.pop("volume_id", VOLUME)

    with pytest.raises(UnsafeParameter, match="refusing to send"):
        parameters(REVERT, volume_id, **arguments)


def test_the_documented_inspect_example_is_a_valid_report(inspect_report: Any) -> None:
    report = parse_report(printed(inspect_report), INSPECT, VOLUME)

    assert report["ok"] is True
    assert report["disk"]["number"] == 2
    assert report["shadow_copies"] == [
        {
            "id": "{6f1e0e7a-1111-4c5d-9e8f-000000000001}",
            "set_id": "{0c9b8a7d-2222-4c5d-9e8f-000000000001}",
            "volume_path": "\\\\?\\Volume{a1b2c3d4-0000-0000-0000-100000000000}\\",
            "install_date": "2026-11-25T00:00:05Z",
            "persistent": True,
            "client_accessible": False,
        }
    ]
    assert "sets" not in report
    assert "copies" not in report


def test_a_revert_report_is_valid(revert_report: Any) -> None:
    report = parse_report(printed(revert_report), REVERT, VOLUME)

    assert report["reverted"] == [SHADOW]
    assert report["offline"] is True


def test_the_report_is_the_last_line_whatever_was_printed_before_it(
    inspect_report: Any,
) -> None:
    stdout = printed(
        inspect_report,
        before="Online disk 2\nDISKSHADOW> list shadows all\n{ not json, just braces }\n[1, 2]",
    )

    assert parse_report(stdout + "\r\n\r\n", INSPECT, VOLUME)["disk"]["number"] == 2


def test_a_line_after_the_report_makes_it_invalid(inspect_report: Any) -> None:
    # docs/disk-tool.md: the report is the last line. A line after it means the script did
    # not end where the contract says, so what it reported is not trusted.
    stdout = printed(inspect_report, after="Transcript written to C:\\ProgramData\\log.txt")

    with pytest.raises(DiskToolReportInvalid, match="a line follows the JSON report") as caught:
        parse_report(stdout, INSPECT, VOLUME)

    assert "Transcript written" in str(caught.value)
    assert not isinstance(caught.value, DiskToolReportCut)


def test_two_json_lines_are_invalid_even_when_the_last_is_a_report(inspect_report: Any) -> None:
    earlier = copy.deepcopy(inspect_report)
    earlier["disk"]["number"] = 7

    with pytest.raises(DiskToolReportInvalid, match=r"2 JSON objects on stdout \(lines 2 and 3\)"):
        parse_report(printed(earlier, inspect_report, before="Disk 2"), INSPECT, VOLUME)


@pytest.mark.parametrize("stdout", ["", "\r\n  \n", "Online disk 2\nDone.", "[1, 2, 3]"])
def test_output_without_a_json_report_is_invalid(stdout: str) -> None:
    with pytest.raises(DiskToolReportInvalid, match="printed no JSON report as its last line"):
        parse_report(stdout, INSPECT, VOLUME)


def test_a_report_cut_short_is_invalid_never_guessed(inspect_report: Any) -> None:
    cut = printed(inspect_report)[:-40]

    with pytest.raises(DiskToolReportInvalid, match="not JSON"):
        parse_report(cut, INSPECT, VOLUME)


def _many_shadow_copies(report: dict[str, Any], count: int) -> dict[str, Any]:
    (copy, *_) = report["copies"]
    report["copies"] = [
        {**copy, "i": f"{{6f1e0e7a-1111-4c5d-9e8f-{n:012d}}}"} for n in range(count)
    ]
    return report


def test_a_report_cut_at_the_characters_ssm_keeps_fails_saying_so(inspect_report: Any) -> None:
    whole = printed(_many_shadow_copies(inspect_report, 400), before="Disk 2 serial ...")
    assert len(whole) > STDOUT_KEPT

    with pytest.raises(DiskToolReportCut) as cut:
        parse_report(whole[:STDOUT_KEPT], INSPECT, VOLUME)

    assert str(cut.value) == (
        f"Inspect of {VOLUME}: the report was cut: the output filled the 24,000 characters "
        "of stdout SSM keeps, and its last line is not a whole JSON report"
    )
    assert isinstance(cut.value, DiskToolReportInvalid)


def test_output_cut_before_the_report_never_falls_back_on_an_earlier_json_line(
    inspect_report: Any,
) -> None:
    # Short output may end with a line after the report; output SSM cut may not: the
    # lines lost after the kept characters could hold anything, another report included.
    log = "\n".join(f"DISKSHADOW> line {n}" for n in range(2000))
    cut = printed(inspect_report, after=log)[:STDOUT_KEPT]

    with pytest.raises(DiskToolReportCut, match="the report was cut"):
        parse_report(cut, INSPECT, VOLUME)


def test_a_whole_report_ending_exactly_at_the_characters_ssm_keeps_is_read(
    inspect_report: Any,
) -> None:
    line = json.dumps(inspect_report, separators=(",", ":"))
    stdout = "x" * (STDOUT_KEPT - len(line) - 2) + "\n" + line + "\n"
    assert len(stdout) == STDOUT_KEPT

    assert parse_report(stdout, INSPECT, VOLUME)["disk"] == inspect_report["disk"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("schema", 1, "schema 1"),
        ("action", "Revert", "report is for Revert"),
        ("volume_id", "vol-0ffffffffffffffff", "of vol-0ffffffffffffffff"),
    ],
)
def test_a_report_for_another_schema_action_or_volume_is_invalid(
    inspect_report: Any, field: str, value: Any, expected: str
) -> None:
    inspect_report[field] = value

    with pytest.raises(DiskToolReportInvalid, match=expected):
        parse_report(printed(inspect_report), INSPECT, VOLUME)


def _parent(report: Any, path: str) -> tuple[Any, str]:
    """The object holding the field at a dotted path ("partitions.0.size"), and its name."""
    *parents, last = path.split(".")
    for key in parents:
        report = report[int(key)] if key.isdigit() else report[key]
    return report, last


@pytest.mark.parametrize(
    "path",
    [
        "ok",
        "schema",
        "disk.serial_number",
        "disk.is_system",
        "partitions",
        "sets",
        "copies",
        "partitions.0.volume_path",
        "copies.0.i",
        "copies.0.s",
        "copies.0.p",
        "copies.0.t",
        "copies.0.f",
    ],
)
def test_a_report_missing_a_field_is_invalid(inspect_report: Any, path: str) -> None:
    parent, name = _parent(inspect_report, path)
    del parent[name]

    with pytest.raises(DiskToolReportInvalid):
        parse_report(printed(inspect_report), INSPECT, VOLUME)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("disk.number", True),
        ("disk.size", False),
        ("partitions.0.number", True),
        ("schema", True),
        ("disk.number", "2"),
        ("disk.size", 32212254720.0),
        ("disk.is_boot", "false"),
        ("ok", "true"),
        ("copies.0.f", True),
        ("copies.0.t", 1795564805000),
        ("copies.0.s", "0"),
        ("copies.0.p", True),
        ("partitions", {"number": 2}),
        ("disk", "Disk 2"),
    ],
)
def test_a_report_with_a_mistyped_field_is_invalid(
    inspect_report: Any, path: str, value: Any
) -> None:
    parent, name = _parent(inspect_report, path)
    parent[name] = value

    with pytest.raises(DiskToolReportInvalid):
        parse_report(printed(inspect_report), INSPECT, VOLUME)


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("copies.0.s", 1, "report.copies[0].s is 1: there are 1 sets"),
        ("copies.0.s", -1, "report.copies[0].s is -1"),
        ("copies.0.p", 3, "report.copies[0].p is 3: no such partition listed"),
        ("copies.0.f", "cp", "report.copies[0].f is 'cp'"),
        ("copies.0.f", "persistent", "report.copies[0].f is 'persistent'"),
    ],
)
def test_a_shadow_copy_naming_no_listed_set_or_volume_is_invalid_never_guessed(
    inspect_report: Any, path: str, value: Any, problem: str
) -> None:
    parent, name = _parent(inspect_report, path)
    parent[name] = value

    with pytest.raises(DiskToolReportInvalid, match=re.escape(problem)):
        parse_report(printed(inspect_report), INSPECT, VOLUME)


def test_a_set_id_that_is_no_guid_is_invalid(inspect_report: Any) -> None:
    inspect_report["sets"] = ["0c9b8a7d; Remove-Item"]

    with pytest.raises(DiskToolReportInvalid, match=r"report\.sets\[0\]"):
        parse_report(printed(inspect_report), INSPECT, VOLUME)


def test_a_bool_where_an_int_is_required_is_named_in_the_error(inspect_report: Any) -> None:
    inspect_report["disk"]["number"] = True

    with pytest.raises(DiskToolReportInvalid, match=r"report\.disk\.number is True"):
        parse_report(printed(inspect_report), INSPECT, VOLUME)


def test_a_successful_report_without_a_disk_is_invalid(inspect_report: Any) -> None:
    inspect_report["disk"] = None

    with pytest.raises(DiskToolReportInvalid, match=r"report\.disk is not an object"):
        parse_report(printed(inspect_report), INSPECT, VOLUME)


def test_a_revert_report_missing_whether_the_disk_is_offline_is_invalid(
    revert_report: Any,
) -> None:
    del revert_report["offline"]

    with pytest.raises(DiskToolReportInvalid, match=r"report\.offline"):
        parse_report(printed(revert_report), REVERT, VOLUME)


def test_a_failed_report_carries_the_windows_error_verbatim(inspect_report: Any) -> None:
    failed = {**inspect_report, "ok": False, "disk": None, "error": "No disk has serial vol0a40"}
    del failed["partitions"], failed["sets"], failed["copies"]

    report = parse_report(printed(failed), INSPECT, VOLUME)

    assert (report["ok"], report["error"]) == (False, "No disk has serial vol0a40")


@pytest.mark.parametrize("error", [None, "", 0])
def test_a_failed_report_without_the_error_text_is_invalid(revert_report: Any, error: Any) -> None:
    revert_report.update(ok=False, error=error)

    with pytest.raises(DiskToolReportInvalid, match="must carry the Windows error text"):
        parse_report(printed(revert_report), REVERT, VOLUME)


@pytest.mark.parametrize(
    ("scanner", "result", "passed", "problem"),
    [
        ("chkdsk", "NoErrorsFound", False, "passed=False with scan_result 'NoErrorsFound'"),
        ("chkdsk", "ScanImpossible", True, "only NoErrorsFound passes"),
        ("fsck", "NoErrorsFound", True, "scanner is 'fsck'"),
    ],
)
def test_a_check_report_whose_scan_and_verdict_disagree_is_refused(
    inspect_report: dict[str, Any], scanner: str, result: str, passed: bool, problem: str
) -> None:
    report = {
        "schema": 2,
        "action": CHECK,
        "volume_id": VOLUME,
        "ok": True,
        "error": None,
        "disk": inspect_report["disk"],
        "volumes": [
            {
                "number": 2,
                "volume_path": "\\\\?\\Volume{a}\\",
                "file_system": "NTFS",
                "scanner": scanner,
                "scan_result": result,
                "scan_error": "",
                "passed": passed,
            }
        ],
        "validation": None,
        "passed": passed,
        "identity_restored": inspect_report["disk"]["identity"],
        "offline": True,
    }
    with pytest.raises(DiskToolReportInvalid, match=re.escape(problem)):
        parse_report(printed(report), CHECK, VOLUME)
