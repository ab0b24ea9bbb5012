"""The helper fleet (HelperMode=fleet): which image, which subnet, what a launch asks for.

The helpers are ours and throwaway: launched from AWS's own Windows image into the
operator's subnets, with no inbound rule, IMDSv2 required, an encrypted root volume, an
instance profile holding only AmazonSSMManagedInstanceCore, and tagged ours at launch (the
only instances the workflow may terminate, in code and in IAM).

One zone per restore: the helper's. The temporary volume is created where the helper is
(a snapshot is regional, a volume zonal), so the zone is chosen once, at launch: the source
volume's zone first (the operator's subnets there, in their order), then the other subnets,
when EC2 has no capacity for the instance type in that zone.
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
