"""The account the kit acts on, through boto3 only: AWS itself, or the simulator over moto."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from vss_restore import tags

# Every resource the kit makes carries this tag, with the run's ID: what the final check looks
# for. The stacks' own resources carry it too (CloudFormation stack tags).
KIT_TAG = f"{tags.PREFIX}e2e"


class KitFailed(Exception):
    """A step could not do what it must; the message says which and why."""


class WaitTimedOut(KitFailed):
    """Something did not happen within its bound."""


@dataclass(frozen=True)
class Clock:
    """Real time on AWS; the simulator's virtual clock in its twin."""

    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


@dataclass
class Account:
    """One Region of one account; the clients come from boto3's own settings (credentials,
    profile, endpoint), so the same code talks to AWS or to moto."""

    region: str
    session: Any = None
    clock: Clock = field(default_factory=Clock)
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            session: Any = self.session or boto3.session.Session()
            self._clients[service] = session.client(service, region_name=self.region)
        return self._clients[service]

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def ssm(self) -> Any:
        return self.client("ssm")

    @property
    def cloudformation(self) -> Any:
        return self.client("cloudformation")

    def wait_for(
        self, what: str, look: Callable[[], Any], *, timeout: float, every: float = 15.0
    ) -> Any:
        """Look until `look` gives something truthy, at most `timeout` seconds."""
        deadline = self.clock.monotonic() + timeout
        while True:
            found = look()
            if found:
                return found
            if self.clock.monotonic() >= deadline:
                raise WaitTimedOut(f"{what}: not after {timeout:g} s")
            self.clock.sleep(every)

    # -- what the kit reads ---------------------------------------------------------------
    def snapshot_tags(self, snapshot_id: str) -> dict[str, str]:
        found = self.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
        return tags.as_dict(found[0].get("Tags")) if found else {}

    def stack_outputs(self, stack_name: str) -> dict[str, str]:
        stack = self.cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def stack_exists(self, stack_name: str) -> bool:
        try:
            stacks = self.cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return False
            raise
        return any(s["StackStatus"] != "DELETE_COMPLETE" for s in stacks)

    # -- the volume the kit reads the consistent snapshot through --------------------------
    def volume_from(self, snapshot_id: str, zone: str, run_id: str, purpose: str) -> str:
        volume_id: str = self.ec2.create_volume(
            SnapshotId=snapshot_id,
            AvailabilityZone=zone,
            VolumeType="gp3",
            TagSpecifications=[
                {
                    "ResourceType": "volume",
                    "Tags": tags.as_list({KIT_TAG: run_id, "Name": f"vss-restore e2e {purpose}"}),
                }
            ],
        )["VolumeId"]
        self.wait_for(
            f"{volume_id} available",
            lambda: self._volume(volume_id)["State"] == "available",
            timeout=600,
            every=5,
        )
        return volume_id

    def attach(self, volume_id: str, instance_id: str, device: str) -> None:
        self.ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)
        self.wait_for(
            f"{volume_id} attached to {instance_id}",
            lambda: any(
                a.get("State") == "attached" for a in self._volume(volume_id)["Attachments"]
            ),
            timeout=600,
            every=5,
        )

    def detach_and_delete(self, volume_id: str) -> None:
        volume = self._volume(volume_id)
        if volume is None:
            return
        for attachment in volume.get("Attachments", []):
            if attachment.get("State") in ("attaching", "attached"):
                self.ec2.detach_volume(VolumeId=volume_id, InstanceId=attachment["InstanceId"])
        self.wait_for(
            f"{volume_id} detached",
            lambda: (self._volume(volume_id) or {"State": "available"})["State"] == "available",
            timeout=600,
            every=5,
        )
        self.ec2.delete_volume(VolumeId=volume_id)

    def _volume(self, volume_id: str) -> Any:
        try:
            found = self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"]
        except ClientError as exc:
            if "NotFound" in str(exc):
                return None
            raise
        return found[0] if found else None

    def instance_zone(self, instance_id: str) -> str:
        reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return str(reservations[0]["Instances"][0]["Placement"]["AvailabilityZone"])
