"""EC2 adapter: the snapshot, volume and instance calls of the restore."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.exceptions import ClientError

from vss_restore import tags
from vss_restore.aws import error_code, error_message, throttling_is_transient
from vss_restore.errors import (
    DeviceNameTaken,
    HelperCapacityShort,
    HelperLaunchDelayed,
    NotOurs,
    SnapshotNotFound,
    VolumeAlreadyAttached,
)
from vss_restore.logic.fleet import TRY_ANOTHER_SUBNET, TRY_LATER, is_our_helper

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef, TagSpecificationTypeDef, TagTypeDef


class Ec2:
    def __init__(self, client: "EC2Client | None" = None) -> None:
        self._client = client

    @property
    def client(self) -> "EC2Client":
        if self._client is None:
            self._client = boto3.client("ec2")
        return self._client

    def snapshot(self, snapshot_id: str) -> dict[str, Any]:
        with throttling_is_transient():
            try:
                found = self.client.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
            except ClientError as exc:
                if error_code(exc) in {"InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed"}:
                    said = error_message(exc) or f"{error_code(exc)}: no such snapshot"
                    raise SnapshotNotFound(f"{snapshot_id}: {said}") from exc
                raise
        if not found:
            raise SnapshotNotFound(f"{snapshot_id} is not visible to this account")
        return dict(found[0])

    def snapshots_made_by(self, execution: str, source_snapshot_id: str) -> list[dict[str, Any]]:
        with throttling_is_transient():
            found = self.client.describe_snapshots(
                OwnerIds=["self"],
                Filters=[
                    {"Name": f"tag:{tags.EXECUTION}", "Values": [execution]},
                    {"Name": f"tag:{tags.SOURCE_SNAPSHOT}", "Values": [source_snapshot_id]},
                    {"Name": f"tag:{tags.RESOURCE}", "Values": [tags.CONSISTENT_SNAPSHOT]},
                ],
            )["Snapshots"]
        # Checked again here, with the description no EC2 API can change: a snapshot someone
        # gave our tags is neither adopted as consistent nor deleted by a cleanup.
        return [
            dict(snapshot)
            for snapshot in found
            if is_consistent_snapshot_of(dict(snapshot), source_snapshot_id, execution)
        ]

    def volume(self, volume_id: str) -> dict[str, Any] | None:
        with throttling_is_transient():
            try:
                found = self.client.describe_volumes(VolumeIds=[volume_id])["Volumes"]
            except ClientError as exc:
                if error_code(exc) == "InvalidVolume.NotFound":
                    return None
                raise
        return dict(found[0]) if found else None

    def temporary_volumes(self, execution: str = "") -> list[dict[str, Any]]:
        """Volumes tagged as our temporary volumes (of one execution, if given)."""
        filters = [{"Name": f"tag:{tags.RESOURCE}", "Values": [tags.TEMPORARY_VOLUME]}]
        if execution:
            filters.append({"Name": f"tag:{tags.EXECUTION}", "Values": [execution]})
        with throttling_is_transient():
            pages = self.client.get_paginator("describe_volumes").paginate(
                Filters=cast("list[FilterTypeDef]", filters)
            )
            return [dict(volume) for page in pages for volume in page["Volumes"]]

    def our_temporary_volumes(self, page: int) -> dict[str, dict[str, Any]]:
        """Every volume tagged as our temporary volume, by ID, `page` a call (the shared look,
        looks.py): filtered by tag, not by VolumeIds, which MaxResults cannot go with (EC2 API
        Reference, DescribeVolumes)."""
        with throttling_is_transient():
            pages = self.client.get_paginator("describe_volumes").paginate(
                Filters=[{"Name": f"tag:{tags.RESOURCE}", "Values": [tags.TEMPORARY_VOLUME]}],
                PaginationConfig={"PageSize": page},
            )
            return {str(volume["VolumeId"]): dict(volume) for p in pages for volume in p["Volumes"]}

    def completed_snapshots_tagged(self, key: str, value: str) -> list[dict[str, Any]]:
        """This account's completed snapshots that carry the tag key=value."""
        with throttling_is_transient():
            pages = self.client.get_paginator("describe_snapshots").paginate(
                OwnerIds=["self"],
                Filters=[
                    {"Name": f"tag:{key}", "Values": [value]},
                    {"Name": "status", "Values": ["completed"]},
                ],
            )
            return [dict(snapshot) for page in pages for snapshot in page["Snapshots"]]

    def snapshots_tagged(self, key: str, value: str) -> list[dict[str, Any]]:
        """This account's snapshots, in any state, that carry the tag key=value."""
        with throttling_is_transient():
            pages = self.client.get_paginator("describe_snapshots").paginate(
                OwnerIds=["self"], Filters=[{"Name": f"tag:{key}", "Values": [value]}]
            )
            return [dict(snapshot) for page in pages for snapshot in page["Snapshots"]]

    def delete_snapshot(self, snapshot_id: str) -> bool:
        """Delete a snapshot; False when it was gone already. EBS accepts a pending snapshot
        and deletes it once it completes (EBS User Guide, "Delete an Amazon EBS snapshot")."""
        with throttling_is_transient():
            try:
                self.client.delete_snapshot(SnapshotId=snapshot_id)
            except ClientError as exc:
                if error_code(exc) == "InvalidSnapshot.NotFound":
                    return False
                raise
        return True

    def instances_tagged(self, key: str, value: str) -> list[dict[str, Any]]:
        """The instances that carry the tag key=value, terminated ones left out."""
        with throttling_is_transient():
            pages = self.client.get_paginator("describe_instances").paginate(
                Filters=[
                    {"Name": f"tag:{key}", "Values": [value]},
                    {
                        "Name": "instance-state-name",
                        "Values": ["pending", "running", "stopping", "stopped"],
                    },
                ]
            )
            return [
                dict(instance)
                for page in pages
                for reservation in page["Reservations"]
                for instance in reservation.get("Instances", [])
            ]

    def instances(self, instance_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The instances among these IDs that exist, by ID (a filter: a missing one is no
        error)."""
        with throttling_is_transient():
            pages = self.client.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "instance-id", "Values": list(instance_ids)}]
            )
            return {
                str(instance["InstanceId"]): dict(instance)
                for page in pages
                for reservation in page["Reservations"]
                for instance in reservation.get("Instances", [])
            }

    def instance(self, instance_id: str) -> dict[str, Any] | None:
        with throttling_is_transient():
            try:
                reservations = self.client.describe_instances(InstanceIds=[instance_id])[
                    "Reservations"
                ]
            except ClientError as exc:
                if error_code(exc) in {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"}:
                    return None
                raise
        instances = [i for r in reservations for i in r.get("Instances", [])]
        return dict(instances[0]) if instances else None

    def create_volume(
        self,
        *,
        snapshot_id: str,
        availability_zone: str,
        volume_type: str,
        client_token: str,
        volume_tags: dict[str, str],
        kms_key_id: str = "",
    ) -> str:
        # An encrypted snapshot's volume under the snapshot's own key, said explicitly: a
        # snapshot of a volume made from snapshot A is incremental relative to A only under
        # the same key (EBS User Guide, "How Amazon EBS snapshots work"), so the consistent
        # snapshot adds only the blocks the revert changed.
        same_key: dict[str, Any] = {"Encrypted": True, "KmsKeyId": kms_key_id} if kms_key_id else {}
        with throttling_is_transient():
            created = self.client.create_volume(
                SnapshotId=snapshot_id,
                AvailabilityZone=availability_zone,
                VolumeType=volume_type,  # type: ignore[arg-type]
                ClientToken=client_token,
                TagSpecifications=[_at_birth("volume", volume_tags)],
                **same_key,
            )
        return str(created["VolumeId"])

    def attach_volume(self, volume_id: str, instance_id: str, device: str) -> None:
        with throttling_is_transient():
            try:
                self.client.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)
            except ClientError as exc:
                if "already in use" in error_message(exc):
                    raise DeviceNameTaken(f"{device} on {instance_id}") from exc
                if error_code(exc) == "VolumeInUse":
                    raise VolumeAlreadyAttached(f"{volume_id}: {error_message(exc)}") from exc
                raise

    def instance_state(self, instance_id: str) -> str:
        """pending, running, stopping, stopped, shutting-down or terminated; a terminated
        instance stays visible about an hour, then is not found: terminated too."""
        instance = self.instance(instance_id)
        return str((instance or {}).get("State", {}).get("Name", "terminated"))

    def detach_volume(self, volume_id: str, instance_id: str, *, force: bool = False) -> None:
        with throttling_is_transient():
            self.client.detach_volume(VolumeId=volume_id, InstanceId=instance_id, Force=force)

    def delete_volume(self, volume_id: str) -> bool:
        """Delete the volume; False when it was gone already (a retry after the delete went
        through, which a shared look's record may not show yet)."""
        with throttling_is_transient():
            try:
                self.client.delete_volume(VolumeId=volume_id)
            except ClientError as exc:
                if error_code(exc) == "InvalidVolume.NotFound":
                    return False
                raise
        return True

    def create_snapshot(
        self, *, volume_id: str, description: str, snapshot_tags: dict[str, str]
    ) -> str:
        with throttling_is_transient():
            created = self.client.create_snapshot(
                VolumeId=volume_id,
                Description=description,
                TagSpecifications=[_at_birth("snapshot", snapshot_tags)],
            )
        return str(created["SnapshotId"])

    def tag(self, resource_id: str, resource_tags: dict[str, str]) -> None:
        with throttling_is_transient():
            self.client.create_tags(
                Resources=[resource_id], Tags=cast("list[TagTypeDef]", tags.as_list(resource_tags))
            )

    # -- the helper fleet (HelperMode=fleet) ---------------------------------------------
    def image(self, image_id: str) -> dict[str, Any] | None:
        with throttling_is_transient():
            try:
                found = self.client.describe_images(ImageIds=[image_id])["Images"]
            except ClientError as exc:
                if error_code(exc) in {"InvalidAMIID.NotFound", "InvalidAMIID.Malformed"}:
                    return None
                raise
        return dict(found[0]) if found else None

    def architectures(self, instance_type: str) -> list[str]:
        """What the instance type runs (x86_64, arm64); [] for a type EC2 does not know."""
        with throttling_is_transient():
            try:
                found = self.client.describe_instance_types(
                    InstanceTypes=[instance_type]  # type: ignore[list-item]
                )["InstanceTypes"]
            except ClientError as exc:
                if error_code(exc) == "InvalidInstanceType":
                    return []
                raise
        return [str(a) for t in found for a in t["ProcessorInfo"]["SupportedArchitectures"]]

    def subnets(self, subnet_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The subnets, in the order given."""
        with throttling_is_transient():
            found = self.client.describe_subnets(SubnetIds=list(subnet_ids))["Subnets"]
        by_id = {str(s["SubnetId"]): dict(s) for s in found}
        return [by_id[s] for s in subnet_ids if s in by_id]

    def launch(self, request: dict[str, Any]) -> dict[str, Any]:
        """RunInstances; a zone without capacity and an account at its limits are named."""
        try:
            with throttling_is_transient():
                reservation = self.client.run_instances(**request)
        except ClientError as exc:
            code = error_code(exc)
            said = f"{code}: {error_message(exc)}"
            if code in TRY_ANOTHER_SUBNET:
                raise HelperCapacityShort(f"{request.get('SubnetId')}: {said}") from exc
            if code in TRY_LATER:
                raise HelperLaunchDelayed(said) from exc
            raise
        return dict(reservation["Instances"][0])

    def our_helpers(self) -> list[dict[str, Any]]:
        """The fleet's helpers not terminated: tagged ours at launch."""
        found = self.instances_tagged(tags.RESOURCE, tags.LAUNCHED_HELPER)
        return [instance for instance in found if is_our_helper(instance)]

    def terminate_helper(self, instance: dict[str, Any]) -> None:
        """Terminate a helper the fleet launched; anything else is refused."""
        if not is_our_helper(instance):
            raise NotOurs(f"{instance.get('InstanceId')} is not a helper this workflow launched")
        with throttling_is_transient():
            self.client.terminate_instances(InstanceIds=[str(instance["InstanceId"])])

    # -- the boot test of system drives (docs/boot-test.md) -------------------------------
    def stop_instance(self, instance_id: str) -> None:
        with throttling_is_transient():
            self.client.stop_instances(InstanceIds=[instance_id])

    def start_instance(self, instance_id: str) -> None:
        with throttling_is_transient():
            self.client.start_instances(InstanceIds=[instance_id])

    def terminate_instance(self, instance_id: str) -> None:
        with throttling_is_transient():
            self.client.terminate_instances(InstanceIds=[instance_id])

    def status_checks(self, instance_id: str) -> tuple[str, str]:
        """(system status, instance status): ok | impaired | initializing |
        insufficient-data | not-applicable; ("", "") when EC2 reports none (not running)."""
        with throttling_is_transient():
            found = self.client.describe_instance_status(InstanceIds=[instance_id])[
                "InstanceStatuses"
            ]
        if not found:
            return "", ""
        return (
            str(found[0].get("SystemStatus", {}).get("Status", "")),
            str(found[0].get("InstanceStatus", {}).get("Status", "")),
        )

    def volumes_tagged(self, key: str, value: str) -> list[dict[str, Any]]:
        with throttling_is_transient():
            pages = self.client.get_paginator("describe_volumes").paginate(
                Filters=[{"Name": f"tag:{key}", "Values": [value]}]
            )
            return [dict(volume) for page in pages for volume in page["Volumes"]]

    def boot_test_root(
        self,
        *,
        snapshot_id: str,
        availability_zone: str,
        client_token: str,
        root_tags: dict[str, str],
    ) -> str:
        """A gp3 volume from the consistent snapshot (its own encryption: a snapshot's
        volume is encrypted with the snapshot's key)."""
        with throttling_is_transient():
            created = self.client.create_volume(
                SnapshotId=snapshot_id,
                AvailabilityZone=availability_zone,
                VolumeType="gp3",
                ClientToken=client_token,
                TagSpecifications=[_at_birth("volume", root_tags)],
            )
        return str(created["VolumeId"])


def _at_birth(resource_type: str, resource_tags: dict[str, str]) -> "TagSpecificationTypeDef":
    """Tags given in the create call itself, so that IAM can demand them (aws:RequestTag)."""
    return cast(
        "TagSpecificationTypeDef",
        {"ResourceType": resource_type, "Tags": tags.as_list(resource_tags)},
    )


def require_ours(volume: dict[str, Any], source_snapshot_id: str) -> None:
    """Refuse to touch a volume this workflow did not create for this snapshot."""
    volume_tags = tags.as_dict(volume.get("Tags"))
    if (
        volume_tags.get(tags.RESOURCE) != tags.TEMPORARY_VOLUME
        or volume_tags.get(tags.SOURCE_SNAPSHOT) != source_snapshot_id
        # Tags can be written by others; the snapshot a volume was made from cannot.
        or volume.get("SnapshotId") != source_snapshot_id
    ):
        raise NotOurs(
            f"{volume.get('VolumeId')} is not a temporary volume of vss-restore "
            f"for {source_snapshot_id}; it is left untouched"
        )


# Snapshot descriptions are set at creation and no EC2 API changes them: unlike tags, they
# say who made a snapshot. BackupDocument writes "vss-restore backup of <instance> ..."
# (documents/backup.ps1); the workflow writes CONSISTENT_DESCRIPTION (steps.snapshot_volume).
BACKUP_DESCRIPTION_PREFIX = "vss-restore backup of "
CONSISTENT_DESCRIPTION = "Consistent restore of {source} by vss-restore"


def is_snapshot_ours(snapshot: dict[str, Any], vss_tag_key: str, vss_tag_value: str) -> bool:
    """The nightly backup's (the VSS marker, the backup's own instance tag and description)
    or one of our consistent snapshots (our tags, and the description made with it)."""
    snapshot_tags = tags.as_dict(snapshot.get("Tags"))
    backup = (
        snapshot_tags.get(vss_tag_key) == vss_tag_value
        and bool(snapshot_tags.get(tags.INSTANCE_ID))
        and str(snapshot.get("Description", "")).startswith(BACKUP_DESCRIPTION_PREFIX)
    )
    return backup or is_consistent_snapshot(snapshot)


def is_consistent_snapshot(snapshot: dict[str, Any]) -> bool:
    """One of our consistent snapshots: our tags, and the description made with them."""
    snapshot_tags = tags.as_dict(snapshot.get("Tags"))
    source = snapshot_tags.get(tags.SOURCE_SNAPSHOT, "")
    return (
        snapshot_tags.get(tags.RESOURCE) == tags.CONSISTENT_SNAPSHOT
        and bool(source)
        and snapshot.get("Description") == CONSISTENT_DESCRIPTION.format(source=source)
    )


def is_consistent_snapshot_of(
    snapshot: dict[str, Any], source_snapshot_id: str, execution: str
) -> bool:
    """Our consistent snapshot of that source, made by that execution (tags, description)."""
    snapshot_tags = tags.as_dict(snapshot.get("Tags"))
    return (
        is_consistent_snapshot(snapshot)
        and snapshot_tags.get(tags.SOURCE_SNAPSHOT) == source_snapshot_id
        and snapshot_tags.get(tags.EXECUTION) == execution
    )


def require_snapshot_ours(snapshot: dict[str, Any], vss_tag_key: str, vss_tag_value: str) -> None:
    """Refuse to delete a snapshot that is neither the nightly backup's nor one of our
    consistent snapshots: tags can be written by others, descriptions cannot."""
    if not is_snapshot_ours(snapshot, vss_tag_key, vss_tag_value):
        raise NotOurs(
            f"{snapshot.get('SnapshotId')} is neither a backup snapshot nor a consistent "
            "snapshot of vss-restore; it is left untouched"
        )
