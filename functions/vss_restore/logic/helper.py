"""Which Windows instance reverts the snapshot, and whether it may and can do so now.

The helper onlines, reverts and scans a clone of a backed-up disk. On the instance the
disk came from, or on any backed-up server, that puts production at risk: the clone
carries the signature/GUID of a disk online there, every persistent shadow copy of the
live volume exists twice with the same ID, and `diskshadow revert {ID}` takes only the ID
(VSS force-dismounts the volume it reverts). So a helper must be neither, unless the
operator accepts the risk for a snapshot's own instance (AllowSourceAsHelper).
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from vss_restore import tags
from vss_restore.errors import HelperNotUsable
from vss_restore.settings import Settings

HELPER_TAG_VALUE = "true"

# Short enough that the verdict tag (256 characters) keeps the whole refusal.
RISK = "its clone has a live disk's identity and shadow copy IDs; a revert may hit the live volume"
NO_HELPER = (
    "no helper configured: set HelperInstanceIds to Windows instances tagged"
    f" {tags.HELPER}={HELPER_TAG_VALUE} that are not backed up, or name one in the"
    " request (AllowSourceAsHelper=true uses the backed-up instance itself: unsafe)"
)


@dataclass(frozen=True)
class Helper:
    instance_id: str
    availability_zone: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Source:
    """The instances the snapshot's disk belongs to, and its volume's zone, as far as known."""

    backed_up: str = ""  # the snapshot's vss-restore:instance-id tag
    attached_to: str = ""  # the instance the source volume is attached to now
    availability_zone: str = ""

    def own_instance(self) -> str:
        """Where the disk lives: the attachment is EC2's fact, the tag anyone with
        ec2:CreateTags on snapshots (a backup instance among them) could have written."""
        return self.attached_to or self.backed_up


def helper_candidates(requested: str, settings: Settings, source: Source) -> tuple[str, ...]:
    """The instances that may be the helper: the request's, else the stack's list, else
    (only when the operator accepts the risk) the snapshot's own instance."""
    if requested:
        return (requested,)
    if settings.helper_instance_ids:
        return settings.helper_instance_ids
    if settings.allow_source_as_helper and source.own_instance():
        return (source.own_instance(),)
    raise HelperNotUsable(NO_HELPER)


def problems(
    instance_id: str,
    instance: dict[str, Any] | None,
    agent: dict[str, Any] | None,
    source: Source,
    settings: Settings,
) -> list[str]:
    """Why the instance may not or cannot be the helper; empty when it can."""
    if instance is None:
        return ["does not exist"]
    instance_tags = tags.as_dict(instance.get("Tags"))
    found = _safety_problems(instance_id, instance_tags, source, settings)
    if instance_tags.get(tags.HELPER) != HELPER_TAG_VALUE:
        found.append(f"is not tagged {tags.HELPER}={HELPER_TAG_VALUE}")
    state = instance.get("State", {}).get("Name")
    if state != "running":
        found.append(f"is {state}, not running")
    if str(instance.get("Platform", "")).lower() != "windows":
        found.append("is not a Windows instance")
    if agent is None:
        found.append("is not registered with SSM")
    else:
        if agent.get("PingStatus") != "Online":
            found.append(f"has SSM ping status {agent.get('PingStatus')}")
        if agent.get("PlatformType") != "Windows":
            found.append(f"reports SSM platform {agent.get('PlatformType')}")
    if not instance.get("Placement", {}).get("AvailabilityZone", ""):
        found.append("has no Availability Zone")
    return found


def _safety_problems(
    instance_id: str, instance_tags: Mapping[str, str], source: Source, settings: Settings
) -> list[str]:
    """The snapshot's own instance, or any backed-up server, is no place for its clone."""
    if instance_id in (source.backed_up, source.attached_to):
        if settings.allow_source_as_helper:
            return []  # the operator's choice, for this snapshot's own instance only
        what = (
            "the backed-up instance itself"
            if instance_id == source.backed_up
            else "the instance the snapshot's volume is attached to"
        )
        return [f"is {what} (set AllowSourceAsHelper=true to accept the risk: {RISK})"]
    if instance_tags.get(settings.vss_tag_key) == settings.vss_tag_value:
        waived_for = (
            " (AllowSourceAsHelper accepts only a snapshot's own instance)"
            if settings.allow_source_as_helper
            else ""
        )
        return [
            f"is backed up itself (tagged {settings.vss_tag_key}={settings.vss_tag_value}):"
            f" a production server is no place to revert restored disks{waived_for}"
        ]
    return []


def usable_helpers(
    instance_ids: Sequence[str],
    instances: Mapping[str, dict[str, Any]],
    agents: Mapping[str, dict[str, Any]],
    source: Source,
    settings: Settings,
) -> list[Helper]:
    """The candidates that may be the helper; refused, naming every problem, if none."""
    found: list[Helper] = []
    refusals: list[str] = []
    for instance_id in instance_ids:
        instance = instances.get(instance_id)
        wrong = problems(instance_id, instance, agents.get(instance_id), source, settings)
        if wrong:
            refusals.append(f"helper {instance_id} " + "; ".join(wrong))
        else:
            assert instance is not None
            found.append(Helper(instance_id, instance["Placement"]["AvailabilityZone"]))
    if found:
        return found
    if len(refusals) == 1:
        raise HelperNotUsable(refusals[0])
    raise HelperNotUsable(f"none of the {len(refusals)} helpers is usable: " + " | ".join(refusals))


def pick_helper(
    helpers: Sequence[Helper], loads: Mapping[str, int], source_zone: str, snapshot_id: str
) -> Helper:
    """The helper with the fewest restores holding or waiting for its turns; among equals,
    one in the source volume's zone; among those, the snapshot's own by rendezvous hash.

    The load comes first: a snapshot is regional, so any zone works, and a helper free now
    saves hours in a nightly burst. The hash makes the last tie-break the same on every
    retry and spreads a burst (every load still 0) evenly.
    """
    return min(
        helpers,
        key=lambda h: (
            loads.get(h.instance_id, 0),
            h.availability_zone != source_zone,
            _rendezvous(snapshot_id, h.instance_id),
        ),
    )


def tied_zones(helpers: Sequence[Helper], loads: Mapping[str, int]) -> set[str]:
    """The zones of the least busy helpers: the only ones pick_helper's zone choice sees."""
    least = min(loads.get(h.instance_id, 0) for h in helpers)
    return {h.availability_zone for h in helpers if loads.get(h.instance_id, 0) == least}


def _rendezvous(snapshot_id: str, instance_id: str) -> str:
    return hashlib.sha256(f"{snapshot_id}|{instance_id}".encode()).hexdigest()
