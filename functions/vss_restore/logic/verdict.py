"""What a verdict says, volume by volume: the drive, what was done to it, what the check found.

The details go to the execution output and the ledger; the tags carry a summary that fits
EC2's 256 characters (`summary`).
"""

from dataclasses import asdict, dataclass
from typing import Any

from vss_restore.errors import VolumeNotReverted
from vss_restore.logic.disk_tool import NO_ERRORS_FOUND, SCAN_IMPOSSIBLE
from vss_restore.logic.plan import (
    DONE,
    NEWEST,
    NOT_IN_BACKUP,
    NOT_REVERTED,
    RECORDED_ID,
    RECORDED_SET,
    REVERTED_NEWEST,
    REVERTED_RECORDED,
    REVERTED_RECORDED_SET,
    SHADOWED_FILE_SYSTEMS,
    VERIFY_ONLY,
    WEAKER_RULES,
)
from vss_restore.tags import MAX_VALUE_LENGTH

# The rule of a snapshot AWS's VSS tooling made during the freeze: nothing to choose.
VERIFY_ONLY_RULE = "verify-only"
NO_RULE = "none"  # the restore failed before a plan chose anything
RULES = {
    RECORDED_ID: "the shadow copy IDs the backup recorded",
    RECORDED_SET: "the shadow copy set the backup recorded (no IDs recorded)",
    NEWEST: (
        "the newest shadow copy on each volume (no ID or set recorded): weaker, it may be a "
        "Previous Versions copy taken after the backup"
    ),
    VERIFY_ONLY_RULE: "none needed: consistent already (AWS VSS snapshot), checked only",
    NO_RULE: "none: the restore failed before a plan",
}
NOT_CHECKED = "not checked"
_SHORT = {
    REVERTED_RECORDED: "recorded copy",
    REVERTED_RECORDED_SET: "recorded set",
    REVERTED_NEWEST: "newest copy",
    VERIFY_ONLY: "verify-only",
    NOT_IN_BACKUP: "not in backup",
    NOT_REVERTED: "NOT reverted",
}
_REVERTED = frozenset({REVERTED_RECORDED, REVERTED_RECORDED_SET, REVERTED_NEWEST})


@dataclass(frozen=True)
class VolumeVerdict:
    partition: int
    drive: str  # as the backup recorded it; "" when its record cannot tie one to this volume
    file_system: str
    done: str  # a plan.DONE key
    shadow_copy_id: str
    shadow_copy_date: str
    finding: str  # Repair-Volume's scan result, "not scanned (...)" or "not checked"
    passed: bool | None  # None: not scanned

    @property
    def label(self) -> str:
        return f"{self.drive}:" if self.drive else f"partition {self.partition}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "what_was_done": DONE[self.done]}


def scan_label(scan: dict[str, Any]) -> str:
    """A volume's scan, short for the tag: what chkdsk found is said to be chkdsk's, and a scan
    Windows would not do is ScanImpossible, never a finding of damage."""
    result = str(scan["scan_result"])
    if scan["scanner"] == "chkdsk" and result not in (NO_ERRORS_FOUND, SCAN_IMPOSSIBLE):
        return f"chkdsk {result}"
    return result


def is_weaker(rule: str) -> bool:
    return rule in WEAKER_RULES


def volume_verdicts(
    inspection: dict[str, Any],
    plan: dict[str, Any] | None,
    revert: dict[str, Any] | None,
    check: dict[str, Any] | None,
) -> list[VolumeVerdict]:
    """Each volume of the restored disk, from the plan (None: verify-only), the Revert report
    (what was actually reverted) and the Check report (None: not checked)."""
    if plan is None:
        planned = [
            {
                "partition": p["number"],
                "volume_path": p["volume_path"],
                "file_system": p["file_system"],
                "drive": "",
                "done": VERIFY_ONLY,
                "shadow_copy_id": "",
                "shadow_copy_date": "",
            }
            for p in sorted(inspection["partitions"], key=lambda p: p["number"])
        ]
    else:
        planned = list(plan["volumes"])
    reverted = {i.strip("{}").lower() for i in (revert or {}).get("reverted", [])}
    scans = {v["number"]: v for v in (check or {}).get("volumes", [])}
    verdicts = []
    for volume in planned:
        done = volume["done"]
        if done in _REVERTED and volume["shadow_copy_id"].strip("{}").lower() not in reverted:
            done = NOT_REVERTED  # planned, but the Revert report does not say it was done
        scan = scans.get(volume["partition"])
        if scan is not None:
            finding, passed = scan_label(scan), bool(scan["passed"])
        elif check is None:
            finding, passed = NOT_CHECKED, None
        elif str(volume["file_system"]).upper() not in SHADOWED_FILE_SYSTEMS:
            finding, passed = f"not scanned ({volume['file_system'] or 'no file system'})", None
        else:
            finding, passed = "not scanned", None
        verdicts.append(
            VolumeVerdict(
                partition=int(volume["partition"]),
                drive=str(volume["drive"]),
                file_system=str(volume["file_system"]),
                done=done,
                shadow_copy_id=str(volume["shadow_copy_id"]),
                shadow_copy_date=str(volume["shadow_copy_date"]),
                finding=finding,
                passed=passed,
            )
        )
    return verdicts


def require_every_shadowed_volume_reverted(volumes: list[VolumeVerdict]) -> None:
    """The last word before `verified`: no volume the backup shadowed is left unreverted."""
    left = [v for v in volumes if v.done == NOT_REVERTED]
    if left:
        raise VolumeNotReverted(
            "not reverted, left crash-consistent: "
            + ", ".join(f"{v.label} (shadow copy {v.shadow_copy_id})" for v in left)
            + "; the Revert report does not list them"
        )


def reason(rule: str, volumes: list[VolumeVerdict], checked: bool) -> str:
    """The verified verdict's reason: how the disk was made consistent, and whether checked."""
    how = {
        RECORDED_ID: "reverted to the shadow copies the backup recorded",
        RECORDED_SET: "reverted to the backup's recorded shadow set",
        NEWEST: "reverted to the newest shadow copy on each volume (weaker rule: no ID recorded)",
        VERIFY_ONLY_RULE: "consistent already",
    }[rule]
    left_alone = sum(1 for v in volumes if v.done == NOT_IN_BACKUP)
    if left_alone:
        how += f"; {left_alone} volume(s) not part of the backup left as they were"
    if not checked:
        return f"{how}; not checked (CheckAfterRevert is false)"
    return f"{how}; the restored disk passed its check"


def summary(volumes: list[VolumeVerdict], *, findings: bool = True) -> str:
    """One part per volume, for a tag: "D: recorded copy, NoErrorsFound; partition 1: not
    in backup, not scanned (FAT32)", cut at a volume's end to fit EC2's 256 characters.
    Without findings (a failed restore: its reason says what the check found), what was done."""
    parts = [
        f"{v.label} {_SHORT[v.done]}" + (f", {_clip(v.finding, 60)}" if findings else "")
        for v in volumes
    ]
    text = "; ".join(parts)
    if len(text) <= MAX_VALUE_LENGTH:
        return text or "no volume on the disk"
    kept: list[str] = []
    for part in parts:
        more = f"; +{len(parts) - len(kept) - 1} more (execution output)"
        if len("; ".join([*kept, part])) + len(more) > MAX_VALUE_LENGTH:
            break
        kept.append(part)
    return "; ".join(kept) + f"; +{len(parts) - len(kept)} more (execution output)"


def lines(rule: str, volumes: list[VolumeVerdict]) -> list[str]:
    """The verdict for people (the alert): the rule, then one line per volume."""
    out = [f"Rule:       {rule}: {RULES.get(rule, rule)}"]
    for v in volumes:
        shadow = f" {v.shadow_copy_id} of {v.shadow_copy_date}" if v.shadow_copy_id else ""
        out.append(f"  {v.label:<13} {v.file_system or '-':<6} {DONE[v.done]}{shadow}")
    return out


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
