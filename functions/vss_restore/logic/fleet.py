"""The helper fleet (HelperMode=fleet): which image, which subnet, what a launch asks for.

The helpers are ours and throwaway: launched from AWS's own Windows image into the
operator's subnets, with no inbound rule, IMDSv2 required, an encrypted root volume, an
instance profile holding only AmazonSSMManagedInstanceCore, and tagged ours at launch (the
only instances the workflow may terminate, in code and in IAM).

One zone per restore: the helper's. The temporary volume is created where the helper is
(a snapshot is regional, a volume zonal), so the zone is chosen once, at launch: the source
volume's zone first (the operator's subnets there, in their order), then the other subnets,
when EC2 has no capacity for the instance type in that zone.

A helper past HelperMaxHours drains (`retirement`): it takes no new work, the restores in its
line go to another helper, and it is terminated once the turns it holds are given back; the
turn lease (TURN_LEASE_SECONDS) later still, it is terminated whatever it holds.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from vss_restore import tags
from vss_restore.settings import Settings

# RunInstances errors that another subnet (another zone) may not have (EC2 API Reference,
# "Error codes": InsufficientInstanceCapacity, "Unsupported" for a type a zone lacks).
TRY_ANOTHER_SUBNET = frozenset({"InsufficientInstanceCapacity", "Unsupported"})
# Errors that are the account's or the API's, in every zone: wait and launch later (EC2 API
# Reference, "Error codes": VcpuLimitExceeded, InstanceLimitExceeded; "Request throttling").
TRY_LATER = frozenset(
    {"VcpuLimitExceeded", "InstanceLimitExceeded", "RequestLimitExceeded", "Throttling"}
)
HELPER_NAME = "vss-restore helper"

# What the retirement schedule does with a helper of ours (`retirement`).
ORPHAN = "orphan"  # no place in the ledger: nothing will use it; terminate
TOO_OLD = "too old"  # past HelperMaxHours and the turn lease: terminate, whatever it holds
DRAINING = "draining"  # past HelperMaxHours with work on it: no new work, not terminated yet
DRAINED = "drained"  # past HelperMaxHours, no work left: terminate
IDLE = "idle"  # nobody held or waited for a turn since HelperIdleMinutes: terminate
KEEP = "keep"
TERMINATE = frozenset({ORPHAN, TOO_OLD, DRAINED, IDLE})


@dataclass(frozen=True)
class Launched:
    instance_id: str
    availability_zone: str
    subnet_id: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def image_problems(
    image: Mapping[str, Any] | None, instance_type: str, architectures: Sequence[str]
) -> list[str]:
    """Why no helper can be launched from this image; empty when one can. `architectures`:
    what the instance type runs (DescribeInstanceTypes' SupportedArchitectures)."""
    if image is None:
        return ["does not exist or is not visible to this account"]
    found = []
    if str(image.get("State", "available")) != "available":
        found.append(f"is {image.get('State')}, not available")
    if str(image.get("Platform", "")).lower() != "windows":
        found.append(f"is not a Windows image (platform {image.get('PlatformDetails') or 'Linux'})")
    if not architectures:
        found.append(f"cannot be checked: EC2 knows no instance type {instance_type}")
    elif image.get("Architecture") not in architectures:
        found.append(
            f"is {image.get('Architecture')}, not {' or '.join(architectures)}"
            f" as {instance_type} needs"
        )
    return found


def subnet_order(subnets: Sequence[Mapping[str, Any]], zone: str) -> list[tuple[str, str]]:
    """(subnet, zone) to try in turn: the source volume's zone first, each in the operator's
    order (`subnets` as HelperSubnetIds lists them)."""
    pairs = [(str(s["SubnetId"]), str(s["AvailabilityZone"])) for s in subnets]
    return [p for p in pairs if p[1] == zone] + [p for p in pairs if p[1] != zone]


def client_token(execution: str, snapshot_id: str, subnet_id: str) -> str:
    """The same on every retry of this launch in this subnet (at most 64 ASCII characters):
    a retried RunInstances returns the instance it made instead of a second one."""
    digest = hashlib.sha256(f"{execution}|{snapshot_id}|{subnet_id}".encode()).hexdigest()
    return "vss-restore-helper-" + digest[:40]


def helper_tags(execution: str) -> dict[str, str]:
    return {
        tags.HELPER: tags.HELPER_VALUE,
        tags.RESOURCE: tags.LAUNCHED_HELPER,
        tags.EXECUTION: execution,
        "Name": HELPER_NAME,
    }


def launch_request(
    settings: Settings, image_id: str, subnet_id: str, token: str, execution: str
) -> dict[str, Any]:
    """RunInstances' parameters for one helper: nothing reaches it but SSM's own channel."""
    tag_list = tags.as_list(helper_tags(execution))
    return {
        "ImageId": image_id,
        "InstanceType": settings.helper_instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": token,
        "SubnetId": subnet_id,
        "SecurityGroupIds": [settings.helper_security_group],
        "IamInstanceProfile": {"Arn": settings.helper_instance_profile},
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        # The root volume: Windows Server's C:, encrypted (the account's default EBS key).
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/sda1", "Ebs": {"Encrypted": True, "DeleteOnTermination": True}}
        ],
        "InstanceInitiatedShutdownBehavior": "terminate",
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tag_list},
            {"ResourceType": "volume", "Tags": tag_list},
        ],
    }


def is_our_helper(instance: Mapping[str, Any]) -> bool:
    """Launched by the fleet: the only instances the workflow may terminate."""
    found = tags.as_dict(instance.get("Tags"))
    return (
        found.get(tags.HELPER) == tags.HELPER_VALUE
        and found.get(tags.RESOURCE) == tags.LAUNCHED_HELPER
    )


@dataclass(frozen=True)
class HelperSeen:
    """One helper of ours as the retirement schedule sees it."""

    age_seconds: float  # since its launch
    placed: bool  # it has a place in the ledger (fleet#place-N)
    booting: bool  # launched for a restore that has not used it yet (its place says so)
    busy: bool  # a restore holds or waits for one of its turns
    idle_seconds: float  # since its place last noted a restore on it


def over_age(age_seconds: float, max_hours: int) -> bool:
    """Past HelperMaxHours: the helper takes no new work (it drains)."""
    return age_seconds > max_hours * 3600


def retirement(
    seen: HelperSeen,
    *,
    max_hours: int,
    idle_minutes: int,
    boot_minutes: int,
    lease_seconds: int,
) -> str:
    """What becomes of the helper: one of ORPHAN, TOO_OLD, DRAINING, DRAINED, IDLE, KEEP.

    Past HelperMaxHours a helper drains instead of failing the work on it: a turn it holds
    finishes there, a restore in its line goes elsewhere (HelperDraining). A turn lasts at
    most its lease (`lease_seconds`, a dead holder's turn lapses then), so past HelperMaxHours
    plus the lease the helper is terminated whatever it holds: a hard bound remains."""
    if not seen.placed and seen.age_seconds > boot_minutes * 60:
        return ORPHAN  # launched, but its place is gone
    if seen.age_seconds > max_hours * 3600 + lease_seconds:
        return TOO_OLD
    if over_age(seen.age_seconds, max_hours):
        return DRAINING if seen.busy else DRAINED
    if not seen.placed or (seen.booting and seen.age_seconds < boot_minutes * 60):
        return KEEP  # still booting for its restore (the boot itself is bounded elsewhere)
    if not seen.busy and seen.idle_seconds >= idle_minutes * 60:
        return IDLE
    return KEEP
