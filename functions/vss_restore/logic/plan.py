"""Choosing exactly what to revert, from the disk tool's inspection of the attached disk."""

from dataclasses import asdict, dataclass
from typing import Any

from vss_restore.errors import RevertRefused

RECORDED_ID = "recorded-shadow-copy-id"
RECORDED_SET = "recorded-shadow-set-id"
NEWEST = "newest-on-each-volume"


@dataclass(frozen=True)
class RevertPlan:
    disk_number: int
    disk_identity: str
    shadow_copy_ids: tuple[str, ...]
    rule: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _same(a: str, b: str) -> bool:
    return a.strip("{}").lower() == b.strip("{}").lower()


def plan_revert(
    inspection: dict[str, Any], recorded_id: str = "", recorded_set: str = ""
) -> RevertPlan:
    """One shadow copy per volume of the attached disk, and the rule that chose it."""
    disk = inspection["disk"]
    if disk["is_system"] or disk["is_boot"]:
        raise RevertRefused(
            f"disk {disk['number']} is the helper's own system or boot disk; nothing reverted"
        )
    on_disk = {p["volume_path"].lower() for p in inspection["partitions"]}
    shadows = [s for s in inspection["shadow_copies"] if s["volume_path"].lower() in on_disk]
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
    elif recorded_set:
        chosen = [s for s in shadows if _same(s["set_id"], recorded_set)]
        rule = RECORDED_SET
        if not chosen:
            raise RevertRefused(
                f"no shadow copy of the recorded set {recorded_set} is on disk {disk['number']}"
            )
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
    not_persistent = [s["id"] for s in chosen if not s["persistent"]]
    if not_persistent:
        raise RevertRefused(
            f"shadow copies {', '.join(not_persistent)} are not persistent and cannot be reverted"
        )
    return RevertPlan(
        disk_number=int(disk["number"]),
        disk_identity=str(disk["identity"]),
        shadow_copy_ids=tuple(s["id"] for s in chosen),
        rule=rule,
    )
