"""The boot test of a system drive's consistent snapshot (docs/boot-test.md): whether one is
due, what the throwaway instance is launched with, and the verdict written on the snapshot.

No AWS here: the steps (vss_restore/boot_test.py) ask, this decides.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from vss_restore import tags
from vss_restore.clock import iso
from vss_restore.logic.alert import Alert, console_link
from vss_restore.settings import Settings

# BootTest: "never" (the default) or "weekly": per source instance, at most one boot test in
# any WEEK, counted from the newest vss-restore:boot-tested-at of its consistent snapshots.
NEVER = "never"
WEEKLY = "weekly"
WEEK = timedelta(days=7)
# Windows On-Demand is billed per second with a one-minute minimum per start (AWS What's
# New, 2021-06-11, "per second billing for EC2 Windows Server"); the throwaway instance is
# started twice: at launch (its fresh root) and after the swap (the consistent root).
BILLING_MINIMUM_SECONDS = 60
# How the boot is judged: the source instance is managed by SSM, so its clone's agent must
# come Online; else both EC2 status checks must be "ok".
BY_SSM = "ssm"
BY_STATUS_CHECKS = "status-checks"


@dataclass(frozen=True)
class Plan:
    """What to do for one consistent snapshot: skip it (not a system drive, not due), say it
    cannot be tested (and why), or test it."""

    action: str  # "skip" | "not-testable" | "test"
    reason: str
    image_id: str = ""
    root_device: str = ""
    criterion: str = BY_STATUS_CHECKS


def _device(name: str) -> str:
    """EC2 names a device "/dev/sda1" or "xvdf"; the backup's tag may hold either form."""
    return name.strip().removeprefix("/dev/")


def plan(
    snapshot_tags: Mapping[str, str],
    instance: Mapping[str, Any] | None,
    image: Mapping[str, Any] | None,
    tested_at: Iterable[str],
    now: datetime,
    *,
    managed_by_ssm: bool,
) -> Plan:
    """Decide for the consistent snapshot whose tags are given. `instance` is its source
    instance (None: gone), `image` that instance's AMI (None: deregistered or not visible),
    `tested_at` the boot-tested-at tags of the source instance's consistent snapshots."""
    instance_id = snapshot_tags.get(tags.INSTANCE_ID, "")
    device = snapshot_tags.get(tags.DEVICE, "")
    if not instance_id or not device:
        return Plan("skip", "the snapshot names no source instance or device")
    state = str(((instance or {}).get("State") or {}).get("Name", ""))
    if instance is None or state in {"terminated", "shutting-down"}:
        return Plan(
            "not-testable",
            f"the source instance {instance_id} is gone: its image, which a license-included"
            " Windows root needs to boot, is not known",
        )
    root_device = str(instance.get("RootDeviceName") or "")
    if _device(device) != _device(root_device):
        return Plan("skip", f"{device} is not the system drive of {instance_id} ({root_device})")
    recent = [t for t in tested_at if _is_within(t, now, WEEK)]
    if recent:
        return Plan("skip", f"{instance_id} was boot-tested at {max(recent)} (weekly)")
    image_id = str(instance.get("ImageId") or "")
    if image is None or str(image.get("State", "available")) != "available":
        return Plan(
            "not-testable",
            f"the image {image_id or '(none)'} of {instance_id} is deregistered or not visible:"
            " a license-included Windows root boots only on an instance of its own image (an"
            " image registered from a snapshot loses the billing product code)",
        )
    return Plan(
        "test",
        "",
        image_id=image_id,
        root_device=root_device,
        criterion=BY_SSM if managed_by_ssm else BY_STATUS_CHECKS,
    )


def _is_within(moment: str, now: datetime, span: timedelta) -> bool:
    try:
        when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return False  # a tag someone else wrote: not a test of ours
    return now - span < when <= now + timedelta(minutes=5)


def instance_tags(execution: str, snapshot_id: str) -> dict[str, str]:
    """On the throwaway instance and its launch root (at launch): ours, of this execution.
    None of the source's tags: no maintenance window or association targets it by tag."""
    return {
        tags.RESOURCE: tags.BOOT_TEST_INSTANCE,
        tags.EXECUTION: execution,
        tags.SOURCE_SNAPSHOT: snapshot_id,
        "Name": f"vss-restore boot test of {snapshot_id}",
    }


def root_tags(execution: str, snapshot_id: str) -> dict[str, str]:
    return {
        tags.RESOURCE: tags.BOOT_TEST_ROOT,
        tags.EXECUTION: execution,
        tags.SOURCE_SNAPSHOT: snapshot_id,
        "Name": f"vss-restore boot test root from {snapshot_id}",
    }


def client_token(kind: str, execution: str, snapshot_id: str) -> str:
    """The same on every retry of this call in this execution (at most 64 ASCII characters)."""
    digest = hashlib.sha256(f"{kind}|{execution}|{snapshot_id}".encode()).hexdigest()
    return f"vss-restore-boot-{kind[:8]}-" + digest[:36]


def launch_request(
    settings: Settings,
    plan_: Plan,
    subnet_id: str,
    execution: str,
    snapshot_id: str,
) -> dict[str, Any]:
    """RunInstances for the throwaway instance: the source's own image (its billing product
    code), our type, subnet, security group (no inbound; egress only HTTPS to the SSM
    endpoints, or none), the helpers' instance profile (SSM core only), no key pair, no user
    data, tagged ours at launch."""
    tag_list = tags.as_list(instance_tags(execution, snapshot_id))
    return {
        "ImageId": plan_.image_id,
        "InstanceType": settings.helper_instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": client_token("launch", execution, snapshot_id),
        "SubnetId": subnet_id,
        "SecurityGroupIds": [settings.boot_test_security_group],
        "IamInstanceProfile": {"Arn": settings.helper_instance_profile},
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        # The launch root is thrown away after the first stop; encrypted like every volume
        # the stack makes (the account's default EBS key).
        "BlockDeviceMappings": [
            {
                "DeviceName": plan_.root_device,
                "Ebs": {"Encrypted": True, "DeleteOnTermination": True},
            }
        ],
        # A clone that shuts itself down is gone, not left stopped.
        "InstanceInitiatedShutdownBehavior": "terminate",
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tag_list},
            {"ResourceType": "volume", "Tags": tag_list},
        ],
    }


def is_ours(resource: Mapping[str, Any], kind: str, execution: str) -> bool:
    """Tagged as the boot test's `kind` (BOOT_TEST_INSTANCE or BOOT_TEST_ROOT) of this
    execution: the only instances and volumes the boot test may stop, detach or delete."""
    found = tags.as_dict(resource.get("Tags"))
    return found.get(tags.RESOURCE) == kind and found.get(tags.EXECUTION) == execution


def billed_seconds(runs: Iterable[tuple[str, str]]) -> int:
    """Seconds billed for the instance's runs (start, end), each at least the minimum."""
    total = 0
    for start, end in runs:
        seconds = (_at(end) - _at(start)).total_seconds()
        total += max(int(seconds), BILLING_MINIMUM_SECONDS)
    return total


def _at(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def cost_text(seconds: int, hourly_price: float) -> str:
    return f"{seconds} s of {hourly_price:g} USD/h: {seconds * hourly_price / 3600:.4f} USD"


def verdict_tags(result: str, reason: str, at: datetime, seconds: int) -> dict[str, str]:
    return {
        tags.BOOT_TEST: result,
        tags.BOOT_TESTED_AT: iso(at),
        tags.BOOT_TEST_REASON: reason,
        tags.BOOT_TEST_SECONDS: str(seconds),
    }


def failure_alert(snapshot_id: str, result: str, reason: str, execution: str) -> Alert:
    """What the operator reads when a system drive's consistent snapshot did not boot (or
    could not be booted): the restore itself was verified; this is about the snapshot."""
    what = "did not boot" if result == tags.FAILED else "could not be boot-tested"
    return Alert(
        subject=f"vss-restore: {snapshot_id} {what}",
        message="\n".join(
            [
                f"The consistent snapshot {snapshot_id} of a system drive {what}.",
                f"Why: {reason}",
                "The restore that made it was verified (its file system and shadow copy);"
                " the boot test tells whether Windows starts from it. The snapshot carries"
                f" {tags.BOOT_TEST}={result} and {tags.BOOT_TEST_REASON}; the throwaway"
                " instance and its volumes were removed (docs/boot-test.md).",
                f"Execution: {console_link(execution)}",
            ]
        ),
    )


def boot_seen(
    criterion: str, ping_status: str, system_status: str, instance_status: str
) -> str | None:
    """The reason the boot counts as done, or None while it does not (yet)."""
    if criterion == BY_SSM:
        return "SSM Online" if ping_status == "Online" else None
    if system_status == "ok" and instance_status == "ok":
        return "both EC2 status checks ok"
    return None
