"""The disk tool's contract (docs/disk-tool.md): its parameters and its JSON report."""

import json
import re
from collections.abc import Mapping
from typing import Any

from vss_restore.errors import DiskToolReportCut, DiskToolReportInvalid, UnsafeParameter

INSPECT = "Inspect"
REVERT = "Revert"
CHECK = "Check"

# The same patterns stand as allowedPattern in template.yaml; a test holds them equal.
PARAMETER_PATTERNS = {
    "Action": r"^(Inspect|Revert|Check)$",
    "VolumeId": r"^vol-[0-9a-f]{8,17}$",
    "DiskNumber": r"^([0-9]{1,3})?$",
    "ShadowCopyIds": r"^(\{[0-9A-Fa-f-]{36}\}(,\{[0-9A-Fa-f-]{36}\})*)?$",
    "DiskIdentity": r"^(0x[0-9A-Fa-f]{8}|\{[0-9A-Fa-f-]{36}\})?$",
    "ValidationScript": r"^([A-Za-z]:\\[A-Za-z0-9 _.\\-]{1,200}\.ps1)?$",
    "LastAction": r"^(true|false)?$",
}

# GetCommandInvocation's StandardOutputContent is "the first 24,000 characters written by
# the plugin to stdout" (SSM API Reference): output that long may have lost its end.
STDOUT_KEPT = 24_000
REPORT_CUT = (
    f"the report was cut: the output filled the {STDOUT_KEPT:,} characters of stdout SSM "
    "keeps, and its last line is not a whole JSON report"
)

SHADOW_COPY_ID = re.compile(r"^\{[0-9A-Fa-f-]{36}\}$")

# A command's Comment names its action and volume: the SSM event that ends it names neither.
_COMMENT = re.compile(r"^vss-restore (Inspect|Revert|Check) (vol-[0-9a-f]{8,17}) ")


def comment(action: str, volume_id: str, execution: str) -> str:
    """The command's Comment (SSM keeps 100 characters): action and volume come first."""
    return f"vss-restore {action} {volume_id} {execution.rsplit(':', 1)[-1]}"[:100]


def commented(text: str) -> tuple[str, str] | None:
    """(action, volume) from a Comment that comment() wrote; None for anyone else's."""
    found = _COMMENT.match(text + " ")
    return (found.group(1), found.group(2)) if found else None


def parameters(
    action: str,
    volume_id: str,
    *,
    disk_number: int | None = None,
    shadow_copy_ids: tuple[str, ...] = (),
    disk_identity: str = "",
    validation_script: str = "",
    last_action: bool | None = None,
) -> dict[str, list[str]]:
    """SendCommand parameters, each checked against its pattern before it leaves Python.

    `last_action` (Revert and Check): whether the workflow detaches the disk next, so that an
    identity colliding with an online disk is put back now (docs/disk-tool.md)."""
    values = {
        "Action": action,
        "VolumeId": volume_id,
        "DiskNumber": "" if disk_number is None else str(disk_number),
        "ShadowCopyIds": ",".join(shadow_copy_ids),
        "DiskIdentity": disk_identity,
        "ValidationScript": validation_script,
        "LastAction": "" if last_action is None else str(last_action).lower(),
    }
    for name, value in values.items():
        if not re.fullmatch(PARAMETER_PATTERNS[name], value):
            raise UnsafeParameter(f"refusing to send {name}={value!r}: not a valid value")
    return {name: [value] for name, value in values.items()}


_DISK_FIELDS: dict[str, type | tuple[type, ...]] = {
    "number": int,
    "serial_number": str,
    "partition_style": str,
    "identity": str,
    "is_system": bool,
    "is_boot": bool,
    "was_offline": bool,
    "was_read_only": bool,
    "size": int,
}
# Inspect lists shadow copies compactly (issue #14, finding 8: SSM keeps 24,000 characters of
# stdout): each set ID and volume path once, each copy under one-letter keys naming its set by
# index in `sets` and its volume by partition number; `f` holds "p" (persistent) and "c"
# (client accessible). parse_report gives them back as `shadow_copies`, each {"id", "set_id",
# "volume_path", "install_date", "persistent", "client_accessible"}: at most 24,000 characters
# read become well under Step Functions' 256 KiB of state.
_COPY_FIELDS: dict[str, type | tuple[type, ...]] = {
    "i": str,
    "s": int,
    "p": int,
    "t": str,
    "f": str,
}
_COPY_FLAGS = re.compile(r"^p?c?$")
SCHEMA = 2
_PARTITION_FIELDS: dict[str, type | tuple[type, ...]] = {
    "number": int,
    "volume_path": str,
    "file_system": str,
    "size": int,
}
_SCANNED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "number": int,
    "volume_path": str,
    "file_system": str,
    "scanner": str,
    "scan_result": str,
    "scan_error": str,
    "passed": bool,
}
# A Check's scan: Repair-Volume -Scan, or when Windows refuses it on the read-only disk, chkdsk in
# its read-only mode. NO_ERRORS_FOUND alone passes; SCAN_IMPOSSIBLE says that neither could scan
# the volume, which is no finding of damage (docs/disk-tool.md).
NO_ERRORS_FOUND = "NoErrorsFound"
SCAN_IMPOSSIBLE = "ScanImpossible"
SCANNERS = ("Repair-Volume", "chkdsk")
_VALIDATION_FIELDS: dict[str, type | tuple[type, ...]] = {
    "script": str,
    "exit_code": int,
    "passed": bool,
    "output": str,
}
_ACTION_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    INSPECT: {"partitions": list, "sets": list, "copies": list},
    REVERT: {"reverted": list, "identity_restored": str, "offline": bool},
    CHECK: {"volumes": list, "passed": bool, "identity_restored": str, "offline": bool},
}


def _check(obj: Any, fields: Mapping[str, type | tuple[type, ...]], where: str) -> None:
    if not isinstance(obj, Mapping):
        raise DiskToolReportInvalid(f"{where} is not an object")
    for name, kind in fields.items():
        value = obj.get(name)
        # bool is an int in Python: an int field must not accept true/false.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise DiskToolReportInvalid(f"{where}.{name} is {value!r}")


def _json_object(line: str) -> dict[str, Any] | None:
    try:
        found = json.loads(line)
    except json.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


def report_line(stdout: str, action: str, volume_id: str) -> dict[str, Any]:
    """The report as docs/disk-tool.md defines it: the last line of stdout, the only JSON
    object on it. Anything else is DiskToolReportInvalid (DiskToolReportCut when SSM cut
    the output), never a guess at which line was meant."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    report = _json_object(lines[-1]) if lines else None
    earlier = [n for n, line in enumerate(lines[:-1], 1) if _json_object(line) is not None]
    if report is None and len(stdout) >= STDOUT_KEPT:
        # What followed the kept characters is unknown: no earlier line may stand in for it.
        raise DiskToolReportCut(f"{action} of {volume_id}: {REPORT_CUT}")
    if report is None and earlier:
        raise DiskToolReportInvalid(
            f"a line follows the JSON report on line {earlier[-1]} of {len(lines)}: the "
            f"report must be the last line of stdout (last line: {lines[-1][:120]!r})"
        )
    if report is None and lines and lines[-1].startswith("{"):
        raise DiskToolReportInvalid(f"the report line is not JSON: {lines[-1][:120]!r}")
    if report is None:
        raise DiskToolReportInvalid("the disk tool printed no JSON report as its last line")
    if earlier:
        raise DiskToolReportInvalid(
            f"{len(earlier) + 1} JSON objects on stdout (lines {', '.join(map(str, earlier))} "
            f"and {len(lines)}): the disk tool prints one report"
        )
    return report


def parse_report(stdout: str, action: str, volume_id: str) -> dict[str, Any]:
    """The validated report; DiskToolReportInvalid if it breaks the contract, and
    DiskToolReportCut if SSM cut it off."""
    report = report_line(stdout, action, volume_id)
    _check(report, {"schema": int, "action": str, "volume_id": str, "ok": bool}, "report")
    if report["schema"] != SCHEMA or report["action"] != action or report["volume_id"] != volume_id:
        raise DiskToolReportInvalid(
            f"report is for {report['action']} of {report['volume_id']} (schema "
            f"{report['schema']}), expected {action} of {volume_id} (schema {SCHEMA})"
        )
    if not report["ok"]:
        if not isinstance(report.get("error"), str) or not report["error"]:
            raise DiskToolReportInvalid("a failed report must carry the Windows error text")
        return report
    _check(report.get("disk"), _DISK_FIELDS, "report.disk")
    _check(report, _ACTION_FIELDS[action], "report")
    for index, partition in enumerate(report.get("partitions", [])):
        _check(partition, _PARTITION_FIELDS, f"report.partitions[{index}]")
    if action == INSPECT:
        report = _expanded(report)
    for index, volume in enumerate(report.get("volumes", [])):
        _check(volume, _SCANNED_FIELDS, f"report.volumes[{index}]")
        if volume["scanner"] not in SCANNERS:
            raise DiskToolReportInvalid(
                f"report.volumes[{index}].scanner is {volume['scanner']!r}, not one of "
                f"{', '.join(SCANNERS)}"
            )
        if volume["passed"] != (volume["scan_result"] == NO_ERRORS_FOUND):
            raise DiskToolReportInvalid(
                f"report.volumes[{index}] passed={volume['passed']} with scan_result "
                f"{volume['scan_result']!r}: only {NO_ERRORS_FOUND} passes"
            )
    if action == CHECK and report.get("validation") is not None:
        _check(report["validation"], _VALIDATION_FIELDS, "report.validation")
    return report


def _expanded(report: dict[str, Any]) -> dict[str, Any]:
    """An Inspect report with its compact `sets` and `copies` as `shadow_copies` objects."""
    sets = report["sets"]
    for index, set_id in enumerate(sets):
        if not isinstance(set_id, str) or not SHADOW_COPY_ID.match(set_id):
            raise DiskToolReportInvalid(f"report.sets[{index}] is {set_id!r}")
    paths = {p["number"]: p["volume_path"] for p in report["partitions"]}
    shadows = []
    for index, copy in enumerate(report["copies"]):
        where = f"report.copies[{index}]"
        _check(copy, _COPY_FIELDS, where)
        if not 0 <= copy["s"] < len(sets):
            raise DiskToolReportInvalid(f"{where}.s is {copy['s']}: there are {len(sets)} sets")
        if copy["p"] not in paths:
            raise DiskToolReportInvalid(f"{where}.p is {copy['p']}: no such partition listed")
        if not _COPY_FLAGS.match(copy["f"]):
            raise DiskToolReportInvalid(f"{where}.f is {copy['f']!r}, not p, c, pc or empty")
        shadows.append(
            {
                "id": copy["i"],
                "set_id": sets[copy["s"]],
                "volume_path": paths[copy["p"]],
                "install_date": copy["t"],
                "persistent": "p" in copy["f"],
                "client_accessible": "c" in copy["f"],
            }
        )
    listed = {k: v for k, v in report.items() if k not in {"sets", "copies"}}
    return {**listed, "shadow_copies": shadows}


def check_findings(report: dict[str, Any]) -> str:
    """What a Check report found wrong, in a sentence; "" when it passed."""
    problems = []
    # The operator's own verdict first: a long list of volumes must not cut it off.
    validation = report.get("validation")
    if validation is not None and not validation["passed"]:
        problems.append(
            f"{validation['script']} exited {validation['exit_code']}: "
            f"{validation['output'][-120:]}"
        )
    problems += [scan_finding(v) for v in report["volumes"] if not v["passed"]]
    if not report["volumes"]:
        problems.append("no volume to scan on the disk")
    if problems or report["passed"]:
        return "; ".join(problems)
    return "the check did not pass"


def scan_finding(volume: Mapping[str, Any]) -> str:
    """One scanned volume in words: damage found, or a scan Windows would not do (not the same)."""
    where = f"{volume['volume_path']} {volume['file_system']}"
    if volume["scan_result"] == SCAN_IMPOSSIBLE:
        return f"{where}: could not be scanned, no finding either way ({volume['scan_error']})"
    if volume["scanner"] == "chkdsk":
        return f"{where}: chkdsk (read-only) {volume['scan_result']}"
    return f"{where}: {volume['scan_result']}"
