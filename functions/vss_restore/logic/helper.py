"""Which Windows instance reverts the snapshot, and whether it can do so now."""

from dataclasses import asdict, dataclass
from typing import Any

from vss_restore import tags
from vss_restore.errors import HelperNotUsable

HELPER_TAG_VALUE = "true"


@dataclass(frozen=True)
class Helper:
    instance_id: str
    availability_zone: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_helper_id(*candidates: str) -> str:
    """The first helper named: the request's, the stack's, then the backed-up instance's."""
    for candidate in candidates:
        if candidate:
            return candidate
    raise HelperNotUsable(
        "no helper instance: give helper_instance_id, set the HelperInstanceId parameter, "
        f"or tag the snapshot with {tags.INSTANCE_ID} (its volume is attached to no instance)"
    )


def check_helper(
    instance_id: str, instance: dict[str, Any] | None, agent: dict[str, Any] | None
) -> Helper:
    """Refuse, before anything is created, a helper that cannot run the revert."""
    if instance is None:
        raise HelperNotUsable(f"{instance_id} does not exist")
    problems = []
    instance_tags = tags.as_dict(instance.get("Tags"))
    if instance_tags.get(tags.HELPER) != HELPER_TAG_VALUE:
        problems.append(f"is not tagged {tags.HELPER}={HELPER_TAG_VALUE}")
    state = instance.get("State", {}).get("Name")
    if state != "running":
        problems.append(f"is {state}, not running")
    if str(instance.get("Platform", "")).lower() != "windows":
        problems.append("is not a Windows instance")
    if agent is None:
        problems.append("is not registered with SSM")
    else:
        if agent.get("PingStatus") != "Online":
            problems.append(f"has SSM ping status {agent.get('PingStatus')}")
        if agent.get("PlatformType") != "Windows":
            problems.append(f"reports SSM platform {agent.get('PlatformType')}")
    zone = instance.get("Placement", {}).get("AvailabilityZone", "")
    if not zone:
        problems.append("has no Availability Zone")
    if problems:
        raise HelperNotUsable(f"helper {instance_id} " + "; ".join(problems))
    return Helper(instance_id, zone)
