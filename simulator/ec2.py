"""EBS as AWS behaves and moto does not: states that take time, and the checks AWS makes."""

import functools
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot, Volume, VolumeAttachment
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses.elastic_block_store import ElasticBlockStore

from simulator.patching import Patches
from simulator.world import AttachmentRecord, World, arn, base_event, iso_ms, seconds

_RECORD = "_sim_record"
_ATTACHMENT = "_sim_attachment"


def _error(code: str, message: str) -> EC2ClientError:
    return EC2ClientError(code, message)


def _device(name: str) -> str:
    return name.removeprefix("/dev/")


def install(patches: Patches, world: World) -> None:
    """Put the latency model and AWS's checks on moto's EBS classes."""
    now = world.clock.now

    def record_of(attachment: Any) -> AttachmentRecord | None:
        record: AttachmentRecord | None = attachment.__dict__.get(_RECORD)
        return record

    def get_attachment(volume: Any) -> Any:
        attachment = volume.__dict__.get(_ATTACHMENT)
        record = record_of(attachment) if attachment is not None else None
        if record is not None and record.state(now()) == "detached":
            volume.__dict__[_ATTACHMENT] = None
            return None
        return attachment

    def set_attachment(volume: Any, value: Any) -> None:
        volume.__dict__[_ATTACHMENT] = value

    def attachment_status(attachment: Any) -> str:
        record = record_of(attachment)
        if record is not None:
            return record.state(now())
        return str(attachment.__dict__.get("_sim_status", "attached"))

    def set_attachment_status(attachment: Any, value: str) -> None:
        attachment.__dict__["_sim_status"] = value

    patches.replace(Volume, "attachment", property(get_attachment, set_attachment))
    patches.replace(
        Volume,
        "status",
        property(lambda v: world.volume_state(v.id, get_attachment(v) is not None)),
    )
    patches.replace(VolumeAttachment, "status", property(attachment_status, set_attachment_status))
    # moto sets the state once, at creation; here the virtual clock decides, so writes drop.
    patches.replace(
        Snapshot,
        "status",
        property(lambda s: world.snapshot_state(s.id), lambda s, v: None),
    )
    patches.replace(Snapshot, "progress", property(lambda s: world.snapshot_progress(s.id)))
    patches.replace(
        Snapshot,
        "state_message",
        property(lambda s: world.snapshot_failure(s.id)),
    )

    patches.wrap(EBSBackend, "create_volume", functools.partial(_create_volume, world))
    patches.wrap(EBSBackend, "attach_volume", functools.partial(_attach_volume, world))
    patches.wrap(EBSBackend, "detach_volume", functools.partial(_detach_volume, world))
    patches.wrap(EBSBackend, "delete_volume", functools.partial(_delete_volume, world))
    patches.wrap(EBSBackend, "create_snapshot", functools.partial(_create_snapshot, world))
    patches.wrap(EBSBackend, "create_snapshots", functools.partial(_create_snapshots, world))
    patches.wrap(EBSBackend, "copy_snapshot", functools.partial(_copy_snapshot, world))
    patches.wrap(EBSBackend, "delete_snapshot", functools.partial(_delete_snapshot, world))
    patches.wrap(EBSBackend, "describe_snapshots", functools.partial(_describe_snapshots, world))
    patches.wrap(ElasticBlockStore, "create_volume", _idempotent_create_volume)
    patches.wrap(ElasticBlockStore, "describe_volumes", _paged_describe_volumes)
    patches.wrap(InstanceBackend, "run_instances", functools.partial(_run_instances, world))


Method = Callable[..., Any]


def _create_volume(world: World, original: Method) -> Method:
    def create_volume(
        backend: Any, size: Any, zone_name: str, snapshot_id: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        world.settle()
        if zone_name in world.full_zones:
            raise _error(
                "InsufficientVolumeCapacity",
                "There is not enough capacity to fulfill your EBS volume provision request. "
                "You can try to provision a different volume type, EBS volume in a different "
                "availability zone, or you can wait for additional capacity to become available.",
            )
        if snapshot_id:
            state = world.snapshot_state(snapshot_id) if snapshot_id in world.snapshots else ""
            if state in {"pending", "error"}:
                raise _error(
                    "IncorrectState", f"Snapshot '{snapshot_id}' is not in the 'completed' state."
                )
        volume = original(backend, size, zone_name, snapshot_id, *args, **kwargs)
        source_key = getattr(backend.snapshots.get(snapshot_id), "kms_key_id", None)
        if source_key and not kwargs.get("kms_key_id"):
            # EBS: a volume restored from an encrypted snapshot keeps the snapshot's key unless
            # the request names another (moto would take the account's default key).
            volume.kms_key_id = source_key
        state = key_state(backend, volume.kms_key_id) if volume.encrypted else "Enabled"
        volume.create_time = world.clock.now()
        world.volume_created(volume.id, snapshot_id, int(volume.size))
        if snapshot_id and (volume.kms_key_id or None) != (source_key or None):
            # Encrypted with another key than its snapshot (or encrypted from an unencrypted
            # one): its first snapshot is a full copy (EBS User Guide, "How Amazon EBS
            # snapshots work"), a lineage of its own.
            world.volume_contents[volume.id].lineage = volume.id
        if state not in ("Enabled", ""):
            # EBS asks KMS for the volume's data key at creation (KMS Developer Guide, "How
            # Amazon EBS uses KMS"); a disabled key takes part in no cryptographic operation,
            # and what it protects fails "when the KMS key is used again, such as to decrypt
            # the data key" ("Enable and disable keys"). The call itself succeeds: EC2
            # "authenticates the KMS key asynchronously ... the action can appear to complete,
            # but eventually fails" (EC2 API Reference, CreateVolume, KmsKeyId): the volume
            # ends in `error` (how soon: check).
            world.volumes[volume.id].failure = f"KMS key {volume.kms_key_id} is {state}"
        return volume

    return create_volume


def key_state(backend: Any, key_id: str | None) -> str:
    """The KMS key's state as KMS has it ("" when the key is not one moto knows)."""
    if not key_id:
        return ""
    from moto.kms.models import kms_backends

    kms = kms_backends[backend.account_id][backend.region_name]
    try:
        return str(kms.describe_key(key_id).key_state)
    except Exception:  # an alias or ARN moto does not resolve: no opinion
        return ""


def _run_instances(world: World, original: Method) -> Method:
    """RunInstances makes and attaches the image's volumes itself: they come with the
    instance, not through CreateVolume's and AttachVolume's waits."""

    def run_instances(backend: Any, *args: Any, **kwargs: Any) -> Any:
        with world.instantly():
            reservation = original(backend, *args, **kwargs)
        # EC2 API Reference, RunInstances, TagSpecifications: resource type
        # "network-interface" tags the network interfaces created during launch; moto
        # ignores it, which would hide an untagged interface from the tests.
        found = kwargs.get("tags") or {}
        interface_tags = found.get("network-interface", {}) if isinstance(found, dict) else {}
        for instance in reservation.instances if interface_tags else []:
            for interface in instance.nics.values():
                interface.add_tags(interface_tags)
        return reservation

    return run_instances


def _attach_volume(world: World, original: Method) -> Method:
    def attach_volume(
        backend: Any, volume_id: str, instance_id: str, device_path: str, *args: Any, **kwargs: Any
    ) -> Any:
        world.settle()
        volume = backend.get_volume(volume_id)
        instance = backend.get_instance(instance_id)
        state = volume.status
        if volume.attachment is not None:
            raise _error(
                "VolumeInUse",
                f"{volume_id} is already attached to an instance",
            )
        if state != "available":
            raise _error("IncorrectState", f"vol '{volume_id}' is not 'available'.")
        if volume.zone and volume.zone.name != instance.placement.zone:
            raise _error(
                "InvalidVolume.ZoneMismatch",
                f"The volume '{volume_id}' is not in the same availability zone as instance "
                f"'{instance_id}'",
            )
        if instance.state not in {"running", "stopped"}:
            raise _error(
                "IncorrectInstanceState",
                f"The instance '{instance_id}' is not in the 'running' or 'stopped' states.",
            )
        if _device(device_path) in _devices_in_use(world, backend, instance):
            raise _error(
                "InvalidParameterValue",
                f"Invalid value '{device_path}' for unixDevice. "
                f"Attachment point {device_path} is already in use",
            )
        attachment = original(backend, volume_id, instance_id, device_path, *args, **kwargs)
        attachment.attach_time = world.clock.now()
        attachment.__dict__[_RECORD] = world.attach(volume_id, instance_id, device_path)
        return attachment

    return attach_volume


def _devices_in_use(world: World, backend: Any, instance: Any) -> set[str]:
    """Mapped devices, and those of volumes still detaching (AWS keeps them busy)."""
    used = {_device(name) for name in instance.block_device_mapping}
    for volume in backend.volumes.values():
        attachment = volume.attachment
        if attachment is not None and attachment.instance.id == instance.id:
            used.add(_device(attachment.device))
    return used


def _detach_volume(world: World, original: Method) -> Method:
    def detach_volume(
        backend: Any, volume_id: str, instance_id: str, device_path: str, *args: Any, **kwargs: Any
    ) -> Any:
        world.settle()
        volume = backend.get_volume(volume_id)
        attachment = volume.attachment
        instance = attachment.instance if attachment is not None else None
        if (
            not world.is_instant  # a termination detaches its volumes itself
            and instance is not None
            and instance.state != "stopped"
            and _device(attachment.device) == _device(instance.root_device_name)
        ):
            # "If an EBS volume is the root device of an instance, it can't be detached while
            # the instance is running. To detach the root volume, stop the instance first."
            # (EC2 API Reference, DetachVolume). The error code: check on a real account.
            raise _error(
                "IncorrectState",
                f"Unable to detach root volume '{volume_id}' from instance '{instance.id}'",
            )
        if attachment is not None and attachment.status in {"attaching", "detaching"}:
            raise _error(
                "IncorrectState", f"Volume '{volume_id}' is in the '{attachment.status}' state."
            )
        detached = original(backend, volume_id, instance_id, device_path, *args, **kwargs)
        record = detached.__dict__.get(_RECORD)
        if record is not None:
            # AWS keeps the attachment, "detaching", until the detach is done.
            volume.__dict__[_ATTACHMENT] = detached
            world.detach(record)
        return detached

    return detach_volume


def _delete_volume(world: World, original: Method) -> Method:
    def delete_volume(backend: Any, volume_id: str, *args: Any, **kwargs: Any) -> Any:
        world.settle()
        volume = backend.get_volume(volume_id)
        if volume.status == "creating":
            raise _error("IncorrectState", f"The volume '{volume_id}' is 'creating'")
        deleted = original(backend, volume_id, *args, **kwargs)
        world.volume_contents.pop(volume_id, None)
        world.volumes_deleted[volume_id] = world.clock.now()
        return deleted

    return delete_volume


def _create_snapshot(world: World, original: Method) -> Method:
    def create_snapshot(backend: Any, volume_id: str, *args: Any, **kwargs: Any) -> Any:
        world.settle()
        volume = backend.get_volume(volume_id)
        if volume.status in {"creating", "error"}:
            raise _error(
                "IncorrectState", f"The volume '{volume_id}' is in the '{volume.status}' state."
            )
        snapshot = original(backend, volume_id, *args, **kwargs)
        # EBS: a snapshot of an encrypted volume is encrypted with the volume's key (moto
        # keeps only the flag).
        snapshot.kms_key_id = volume.kms_key_id if volume.encrypted else None
        snapshot.start_time = world.clock.now()
        world.snapshot_created(snapshot.id, volume_id, world.snapshot_event_kind)
        return snapshot

    return create_snapshot


def _create_snapshots(world: World, original: Method) -> Method:
    """CreateSnapshots (AWS's VSS tooling): one multi-volume event once all are done."""

    def create_snapshots(backend: Any, *args: Any, **kwargs: Any) -> Any:
        previous, world.snapshot_event_kind = world.snapshot_event_kind, ""
        try:
            snapshots = original(backend, *args, **kwargs)
        finally:
            world.snapshot_event_kind = previous
        if snapshots:
            readiness = [world.snapshots[s.id] for s in snapshots]
            ended = max(r.ready_at for r in readiness)
            world.queue_event(
                ended + seconds(world.timing.event_delivery_seconds),
                multi_volume_event(
                    world,
                    [
                        (s.id, s.volume.id, not r.failure)
                        for s, r in zip(snapshots, readiness, strict=True)
                    ],
                    started=readiness[0].started_at or ended,
                    ended=ended,
                ),
            )
        return snapshots

    return create_snapshots


def _copy_snapshot(world: World, original: Method) -> Method:
    def copy_snapshot(backend: Any, source_snapshot_id: str, *args: Any, **kwargs: Any) -> Any:
        world.settle()
        snapshot = original(backend, source_snapshot_id, *args, **kwargs)
        snapshot.start_time = world.clock.now()
        world.snapshot_copied(snapshot.id, source_snapshot_id)
        return snapshot

    return copy_snapshot


class _DeletedOnCompletion:
    """A pending snapshot whose deletion was accepted: it goes once it completes."""

    def __init__(self, world: World, backend: Any, snapshot_id: str) -> None:
        self.world, self.backend, self.snapshot_id = world, backend, snapshot_id
        self.done = False

    def next_due(self) -> Any:
        return None if self.done else self.world.snapshots[self.snapshot_id].ready_at

    def happen(self, at: Any) -> None:
        self.done = True
        self.backend.snapshots.pop(self.snapshot_id, None)
        self.world.snapshots_deleted.append(self.snapshot_id)


def _delete_snapshot(world: World, original: Method) -> Method:
    """EBS User Guide, "Delete an Amazon EBS snapshot": "Although you can delete a snapshot
    that is still in progress, the snapshot must complete before the deletion takes effect."
    Until then it stays in DescribeSnapshots, pending; a second DeleteSnapshot is accepted.
    moto deletes at once, whatever the state."""

    def delete_snapshot(backend: Any, snapshot_id: str, *args: Any, **kwargs: Any) -> Any:
        world.settle()
        snapshot = backend.snapshots.get(snapshot_id)
        if snapshot is not None and world.snapshot_state(snapshot_id) == "pending":
            if not any(
                isinstance(h, _DeletedOnCompletion) and h.snapshot_id == snapshot_id
                for h in world.happenings
            ):
                world.happenings.append(_DeletedOnCompletion(world, backend, snapshot_id))
            return snapshot
        deleted = original(backend, snapshot_id, *args, **kwargs)
        world.snapshots_deleted.append(snapshot_id)
        return deleted

    return delete_snapshot


def _describe_snapshots(world: World, original: Method) -> Method:
    def describe_snapshots(backend: Any, *args: Any, **kwargs: Any) -> Any:
        world.settle()  # a deletion that took effect since is seen
        return original(backend, *args, **kwargs)

    return describe_snapshots


def multi_volume_event(
    world: World, snapshots: list[tuple[str, str, bool]], *, started: Any, ended: Any
) -> dict[str, Any]:
    """ "EBS Multi-Volume Snapshots Completion Status" (CreateSnapshots, FIELD-NOTES §2)."""
    return base_event(
        world,
        "EBS Multi-Volume Snapshots Completion Status",
        ended,
        [arn(world, "snapshot", snapshot_id) for snapshot_id, _, _ in snapshots],
        {
            "event": "createSnapshots",
            "result": "succeeded" if all(ok for *_, ok in snapshots) else "failed",
            "cause": "",
            "request-id": f"{snapshots[0][0]}-multi",
            "startTime": iso_ms(started),
            "endTime": iso_ms(ended),
            "snapshots": [
                {
                    "snapshot_id": arn(world, "snapshot", snapshot_id),
                    "source": arn(world, "volume", volume_id),
                    "status": "completed" if ok else "error",
                }
                for snapshot_id, volume_id, ok in snapshots
            ],
        },
    )


# ClientToken -> (request parameters, volume ID): moto ignores CreateVolume's ClientToken.
_TOKENS = "_sim_client_tokens"


def _idempotent_create_volume(original: Method) -> Method:
    def create_volume(response: Any) -> Any:
        token = response._get_param("ClientToken")
        if not token:
            return original(response)
        if len(token) > 64:
            raise _error("InvalidParameterValue", "ClientToken is longer than 64 characters")
        backend = response.ec2_backend
        tokens: dict[str, tuple[tuple[Any, ...], str]] = backend.__dict__.setdefault(_TOKENS, {})
        request = tuple(
            response._get_param(name)
            for name in ("Size", "AvailabilityZone", "SnapshotId", "VolumeType", "Iops")
        )
        if token in tokens:
            seen, volume_id = tokens[token]
            if seen != request:
                raise _error(
                    "IdempotentParameterMismatch",
                    "The client token you have provided is associated with a resource that is "
                    "already deleted or that has different parameters. Please use a different "
                    "client token.",
                )
            return ActionResult(backend.get_volume(volume_id))
        result = original(response)
        tokens[token] = (request, result.result.id)
        return result

    return create_volume


# DescribeVolumes' MaxResults, which moto ignores (it answers every volume at once). The EC2
# API Reference, DescribeVolumes: "This value can be between 5 and 500; if you specify a value
# larger than 500, only 500 items are returned. If this parameter is not used, then all items
# are returned. You cannot specify this parameter and the volume IDs parameter in the same
# request." (the text of earlier SDK copies of the reference; botocore's model now points at
# "Pagination" only: check the current page). NextToken continues where the page ended. The
# error codes are EC2's common ones; their messages are ours (AWS's exact words: check).
MAX_RESULTS = (5, 500)


def _paged_describe_volumes(original: Method) -> Method:
    def describe_volumes(response: Any) -> Any:
        asked = response._get_param("MaxResults")
        token = response._get_param("NextToken")
        if asked is None and not token:
            return original(response)
        if response._get_param("VolumeIds", []):
            raise _error(
                "InvalidParameterCombination",
                "MaxResults cannot be specified with VolumeIds in the same request",
            )
        size = int(asked) if asked is not None else MAX_RESULTS[1]
        if size < MAX_RESULTS[0]:
            raise _error(
                "InvalidParameterValue",
                f"MaxResults {size} is below {MAX_RESULTS[0]}",
            )
        size = min(size, MAX_RESULTS[1])
        volumes = sorted(original(response).result["Volumes"], key=lambda v: v.id)
        start = int(token) if token else 0
        page: dict[str, Any] = {"Volumes": volumes[start : start + size]}
        if start + size < len(volumes):
            page["NextToken"] = str(start + size)
        return ActionResult(page)

    return describe_volumes
