"""Choosing exactly what to revert, from the disk tool's inspection of the attached disk,
and what that means for each volume of the disk."""

from dataclasses import asdict, dataclass
from typing import Any

from vss_restore.errors import RevertRefused, VolumeNotReverted

RECORDED_ID = "recorded-shadow-copy-id"
RECORDED_SET = "recorded-shadow-set-id"
NEWEST = "newest-on-each-volume"
# The newest-copy rule cannot tell the backup's shadow copy from a Previous Versions copy
# taken after it (docs/design.md, "The verdict"): a verdict reached by it says so.
WEAKER_RULES = frozenset({NEWEST})

# What was done to one volume of the restored disk (the verdict's words for each).
REVERTED_RECORDED = "reverted-recorded"
REVERTED_RECORDED_SET = "reverted-recorded-set"
REVERTED_NEWEST = "reverted-newest"
VERIFY_ONLY = "verify-only"
NOT_IN_BACKUP = "not-in-backup"
NOT_REVERTED = "not-reverted"
DONE = {
    REVERTED_RECORDED: "reverted to the recorded shadow copy",
    REVERTED_RECORDED_SET: "reverted to the recorded shadow set's copy",
    REVERTED_NEWEST: "reverted to the newest copy",
    VERIFY_ONLY: "verify-only",
    NOT_IN_BACKUP: "not part of the backup",
    NOT_REVERTED: "not reverted",
}
_REVERTED_BY = {
    RECORDED_ID: REVERTED_RECORDED,
    RECORDED_SET: REVERTED_RECORDED_SET,
    NEWEST: REVERTED_NEWEST,
}
# VSS shadows NTFS and ReFS volumes only: any other file system was never in the backup.
SHADOWED_FILE_SYSTEMS = frozenset({"NTFS", "REFS"})


@dataclass(frozen=True)
class VolumePlan:
    """One volume of the restored disk: which drive the backup recorded, what to do with it."""

    partition: int
    volume_path: str
    file_system: str
    drive: str  # "D" as the backup recorded it; "" when its record cannot tie one to this volume
    done: str
    shadow_copy_id: str = ""
    shadow_copy_date: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RevertPlan:
    disk_number: int
    disk_identity: str
    shadow_copy_ids: tuple[str, ...]
    rule: str
    volumes: tuple[VolumePlan, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        plan = asdict(self)
        plan["volumes"] = [v.as_dict() for v in self.volumes]
        return plan


def _same(a: str, b: str) -> bool:
    return a.strip("{}").lower() == b.strip("{}").lower()


def recorded_letters(drive_letters: str) -> list[str]:
    """The backup's `vss-restore:drive-letters` ("D,E"), in the order it recorded them."""
    return [d.strip().rstrip(":").upper() for d in drive_letters.split(",") if d.strip()]


def _volume_label(partition: dict[str, Any]) -> str:
    return f"partition {partition['number']} ({partition['file_system'] or 'no file system'})"


def plan_revert(
    inspection: dict[str, Any],
    recorded_id: str = "",
    recorded_set: str = "",
    drive_letters: str = "",
) -> RevertPlan:
    """One shadow copy per volume the backup shadowed, the rule that chose it, and what
    becomes of every volume of the disk. A volume the backup shadowed that would be left
    unreverted fails the plan (VolumeNotReverted) before anything is reverted."""
    disk = inspection["disk"]
    if disk["is_system"] or disk["is_boot"]:
        raise RevertRefused(
            f"disk {disk['number']} is the helper's own system or boot disk; nothing reverted"
        )
    partitions = sorted(inspection["partitions"], key=lambda p: p["number"])
    on_disk = {p["volume_path"].lower() for p in partitions}
    shadows = [s for s in inspection["shadow_copies"] if s["volume_path"].lower() in on_disk]
    letters = recorded_letters(drive_letters)
    if recorded_id:
        # One ID per drive: a disk with several volumes has one shadow copy for each.
        wanted = [i for i in recorded_id.split(",") if i]
        chosen = [s for s in shadows if any(_same(s["id"], i) for i in wanted)]
        rule = RECORDED_ID
        missing = [i for i in wanted if not any(_same(s["id"], i) for s in chosen)]
        if missing:
            raise RevertRefused(
                f"the recorded shadow copy {', '.join(missing)} is not on disk {disk['number']}"
            )
        if letters and len(letters) != len(wanted):
            raise RevertRefused(
                f"the backup recorded {len(letters)} drive letters ({', '.join(letters)}) and "
                f"{len(wanted)} shadow copy IDs: its record does not say which drive is which"
            )
        # The backup writes the IDs in the order of its drive letters.
        drive_of = {
            s["volume_path"].lower(): letters[position] if letters else ""
            for position, wanted_id in enumerate(wanted)
            for s in chosen
            if _same(s["id"], wanted_id)
        }
    elif recorded_set:
        chosen = [s for s in shadows if _same(s["set_id"], recorded_set)]
        rule = RECORDED_SET
        if not chosen:
            raise RevertRefused(
                f"no shadow copy of the recorded set {recorded_set} is on disk {disk['number']}"
            )
        drive_of = _drives_by_count(chosen, letters, partitions, disk["number"])
    else:
        newest: dict[str, dict[str, Any]] = {}
        for shadow in shadows:
            path = shadow["volume_path"].lower()
            if path not in newest or shadow["install_date"] > newest[path]["install_date"]:
                newest[path] = shadow
        chosen = sorted(newest.values(), key=lambda s: s["volume_path"])
        rule = NEWEST
        if not chosen:
            raise RevertRefused(f"no shadow copy found on disk {disk['number']}")
        drive_of = _drives_by_count(chosen, letters, partitions, disk["number"])
    not_persistent = [s["id"] for s in chosen if not s["persistent"]]
    if not_persistent:
        raise RevertRefused(
            f"shadow copies {', '.join(not_persistent)} are not persistent and cannot be reverted"
        )
    by_path = {s["volume_path"].lower(): s for s in chosen}
    volumes = []
    for partition in partitions:
        path = partition["volume_path"].lower()
        shadow = by_path.get(path)
        volumes.append(
            VolumePlan(
                partition=int(partition["number"]),
                volume_path=partition["volume_path"],
                file_system=partition["file_system"],
                drive=drive_of.get(path, ""),
                done=_REVERTED_BY[rule] if shadow else NOT_IN_BACKUP,
                shadow_copy_id=shadow["id"] if shadow else "",
                shadow_copy_date=shadow["install_date"] if shadow else "",
            )
        )
    return RevertPlan(
        disk_number=int(disk["number"]),
        disk_identity=str(disk["identity"]),
        shadow_copy_ids=tuple(s["id"] for s in chosen),
        rule=rule,
        volumes=tuple(volumes),
    )


def _drives_by_count(
    chosen: list[dict[str, Any]],
    letters: list[str],
    partitions: list[dict[str, Any]],
    disk_number: int,
) -> dict[str, str]:
    """Without recorded IDs, only the number of drives the backup shadowed is known: as many
    volumes must get a shadow copy. A drive letter is tied to a volume only when there is
    one of each; which of several drives is which volume, nothing recorded says."""
    reverted = {s["volume_path"].lower() for s in chosen}
    left = [
        p
        for p in partitions
        if p["volume_path"].lower() not in reverted
        and str(p["file_system"]).upper() in SHADOWED_FILE_SYSTEMS
    ]
    if not letters and left:
        raise VolumeNotReverted(
            f"{', '.join(_volume_label(p) for p in left)} of disk {disk_number} "
            "holds no shadow copy to revert, and the backup recorded no drive letters to "
            "say whether it shadowed it: it may be left crash-consistent"
        )
    if len(reverted) < len(letters):
        raise VolumeNotReverted(
            f"the backup shadowed {len(letters)} drives ({', '.join(d + ':' for d in letters)})"
            f" but only {len(reverted)} volume(s) of disk {disk_number} hold a shadow copy to "
            f"revert; not reverted, left crash-consistent: "
            f"{', '.join(_volume_label(p) for p in left) or 'a volume not on this disk'}"
        )
    if letters and len(reverted) > len(letters):
        raise RevertRefused(
            f"{len(reverted)} volumes of disk {disk_number} hold shadow copies, but the backup "
            f"shadowed {len(letters)} drives ({', '.join(d + ':' for d in letters)}): which "
            "to revert, nothing recorded says; nothing reverted"
        )
    if len(letters) == 1:
        return {next(iter(reverted)): letters[0]}
    return {}
