"""The simulated account's hidden state: timings, disk contents, attachments, pending events."""

import functools
import itertools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Protocol

from simulator.clock import VirtualClock
from simulator.disks import DiskContent
from simulator.faults import Faults
from simulator.quotas import DEFAULT_STANDARD_VCPUS
from simulator.windows import WindowsHost


@dataclass(frozen=True)
class Timing:
    """How long AWS and Windows take (FIELD-NOTES §7); every value can be overridden."""

    volume_available_seconds: float = 2.0
    attach_seconds: float = 3.0
    detach_seconds: float = 3.0
    disk_arrival_seconds: float = 1.0
    snapshot_seconds: float = 180.0
    invocation_visible_seconds: float = 1.0
    command_delivery_seconds: float = 1.0
    inspect_seconds: float = 20.0
    revert_seconds: float = 120.0
    check_seconds: float = 60.0
    command_failure_seconds: float = 3.0
    lambda_seconds: float = 0.2
    event_delivery_seconds: float = 1.0
    shadow_copy_seconds: float = 10.0
    # A launched Windows helper, launch to SSM Online: modelled (simulator/helpers.py).
    helper_boot_seconds: float = 240.0
    # Someone stops or terminates an instance: stopping / shutting-down lasts this long.
    # MODELLED (simulator/instance_loss.py): no published figure for a Windows shutdown.
    instance_stop_seconds: float = 60.0
    instance_terminate_seconds: float = 30.0

    @classmethod
    def with_overrides(cls, overrides: dict[str, float]) -> "Timing":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown timing key(s): {', '.join(unknown)}")
        return cls(**{k: float(v) for k, v in overrides.items()})


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


@dataclass
class AttachmentRecord:
    """One attachment's life on the virtual clock; Windows sees the disk in between."""

    volume_id: str
    instance_id: str
    device: str
    attached_at: datetime
    appears_at: datetime
    requested_at: datetime | None = None
    detach_requested_at: datetime | None = None
    detached_at: datetime | None = None
    appeared: bool = False
    gone: bool = False

    def state(self, at: datetime) -> str:
        if self.detach_requested_at is not None and at >= self.detach_requested_at:
            assert self.detached_at is not None
            return "detached" if at >= self.detached_at else "detaching"
        return "attached" if at >= self.attached_at else "attaching"


@dataclass
class Readiness:
    """When a volume or snapshot leaves creating/pending, and into which state."""

    ready_at: datetime
    failure: str | None = None
    started_at: datetime | None = None


@dataclass(order=True)
class PendingEvent:
    due: datetime
    seq: int
    event: dict[str, Any] = field(compare=False)


class Happening(Protocol):
    """Something on the world's timeline (a command starting or ending) settle must apply."""

    def next_due(self) -> datetime | None: ...

    def happen(self, at: datetime) -> None: ...


@dataclass
class ManagedInstance:
    """What SSM knows of an instance: its agent's ping and platform."""

    instance_id: str
    ping_status: str
    platform_type: str
    platform_name: str
    platform_version: str
    computer_name: str
    ip_address: str


class World:
    def __init__(self, clock: VirtualClock, timing: Timing, faults: Faults) -> None:
        self.clock = clock
        self.timing = timing
        self.faults = faults
        self.region = "us-east-1"
        self.account_id = "123456789012"
        # EC2's On-Demand standard vCPU quota (simulator/quotas.py), set from the scenario.
        self.standard_vcpu_quota = DEFAULT_STANDARD_VCPUS
        self.volume_contents: dict[str, DiskContent] = {}
        self.snapshot_contents: dict[str, DiskContent] = {}
        self.volumes: dict[str, Readiness] = {}
        self.volume_sources: dict[str, str] = {}  # volume -> the snapshot it was made from
        self.volumes_deleted: dict[str, datetime] = {}  # volume -> when DeleteVolume took it
        self.snapshots: dict[str, Readiness] = {}
        self.snapshots_deleted: list[str] = []  # in the order their deletion took effect
        self.attachments: list[AttachmentRecord] = []
        self.hosts: dict[str, WindowsHost] = {}
        self.managed: dict[str, ManagedInstance] = {}
        self.happenings: list[Happening] = []
        self.events: list[PendingEvent] = []
        # What CreateSnapshot's completion event says; CreateSnapshots sends its own event.
        self.snapshot_event_kind = "createSnapshot"
        # Availability Zones where EBS has no capacity now: CreateVolume there fails with
        # InsufficientVolumeCapacity (EC2 API Reference, "Error codes": "There is not enough
        # capacity to fulfill your EBS volume provision request").
        self.full_zones: set[str] = set()
        # Snapshots the operator may not read with EBS direct APIs (no ebs:ListChangedBlocks
        # on them in its policy): simulator/ebs.py refuses them.
        self.ebs_refused: set[str] = set()
        # Instances someone stopped or terminated: their state when it began (instance_loss.py).
        self.lost: dict[str, str] = {}
        # Set by instance_loss.install: lose an instance at a moment (a fault's doing).
        self.lose_instance_at: Callable[[str, str, datetime], None] | None = None
        self._seq = itertools.count()
        self._instant = 0

    @contextmanager
    def instantly(self) -> Iterator[None]:
        """The scenario's estate exists before the run starts: nothing it creates waits."""
        self._instant += 1
        try:
            yield
        finally:
            self._instant -= 1

    @property
    def is_instant(self) -> bool:
        """Inside `instantly()`: EC2 doing its own part of a call (a termination's detaches)."""
        return bool(self._instant)

    def _wait(self, key: str, default: float) -> float:
        return 0.0 if self._instant else self.faults.seconds(key, default)

    # -- contents -------------------------------------------------------------------------
    def content_of_volume(self, volume_id: str) -> DiskContent:
        content = self.volume_contents.get(volume_id)
        if content is None:
            content = DiskContent("RAW", "", 0)
            self.volume_contents[volume_id] = content
        return content

    def host(self, instance_id: str) -> WindowsHost | None:
        return self.hosts.get(instance_id)

    def disk_online_anywhere(self, volume_id: str) -> bool:
        return any(
            disk.online
            for host in self.hosts.values()
            for disk in host.disks.values()
            if disk.volume_id == volume_id
        )

    # -- volumes, snapshots ---------------------------------------------------------------
    def volume_created(self, volume_id: str, snapshot_id: str | None, size_gib: int) -> None:
        now = self.clock.now()
        wait = self._wait("volume_available_seconds", self.timing.volume_available_seconds)
        self.volumes[volume_id] = Readiness(
            now + seconds(wait), self.faults.outcome("volume_error"), now
        )
        if snapshot_id:
            self.volume_sources[volume_id] = snapshot_id
        source = self.snapshot_contents.get(snapshot_id or "")
        self.volume_contents[volume_id] = (
            source.clone()
            if source
            else DiskContent("RAW", "", size_gib * 1024**3, lineage=volume_id)
        )

    def volume_state(self, volume_id: str, attached: bool) -> str:
        readiness = self.volumes.get(volume_id)
        if readiness is not None and self.clock.now() < readiness.ready_at:
            return "creating"
        if readiness is not None and readiness.failure:
            return "error"
        return "in-use" if attached else "available"

    def snapshot_created(self, snapshot_id: str, volume_id: str, event_kind: str) -> None:
        """A snapshot holds the volume as it is now; a volume in use gives a crash copy."""
        self.settle()
        content = self.content_of_volume(volume_id)
        in_use = self.disk_online_anywhere(volume_id)
        held = content.crash_copy() if in_use else content.clone()
        self._new_snapshot(snapshot_id, held, event_kind, arn(self, "volume", volume_id))

    def snapshot_copied(self, snapshot_id: str, source_snapshot_id: str) -> None:
        source = self.snapshot_contents.get(source_snapshot_id)
        held = source.clone() if source else DiskContent("RAW", "", 0)
        self._new_snapshot(
            snapshot_id, held, "copySnapshot", arn(self, "snapshot", source_snapshot_id)
        )

    def _new_snapshot(
        self, snapshot_id: str, content: DiskContent, event_kind: str, source_arn: str
    ) -> None:
        now = self.clock.now()
        wait = self._wait("snapshot_seconds", self.timing.snapshot_seconds)
        failure = self.faults.outcome("snapshot_error")
        self.snapshots[snapshot_id] = Readiness(now + seconds(wait), failure, now)
        self.snapshot_contents[snapshot_id] = content
        if event_kind:
            self.queue_event(
                now + seconds(wait + self.timing.event_delivery_seconds),
                snapshot_event(self, event_kind, snapshot_id, source_arn, failure, now, wait),
            )

    def snapshot_state(self, snapshot_id: str) -> str:
        readiness = self.snapshots.get(snapshot_id)
        if readiness is None:
            return "completed"
        if self.clock.now() < readiness.ready_at:
            return "pending"
        return "error" if readiness.failure else "completed"

    def snapshot_failure(self, snapshot_id: str) -> str | None:
        """DescribeSnapshots' StateMessage: why a snapshot is in the error state."""
        if self.snapshot_state(snapshot_id) != "error":
            return None
        return self.snapshots[snapshot_id].failure

    def snapshot_progress(self, snapshot_id: str) -> str:
        readiness = self.snapshots.get(snapshot_id)
        if readiness is None or readiness.started_at is None:
            return "100%"
        total = (readiness.ready_at - readiness.started_at).total_seconds()
        done = (self.clock.now() - readiness.started_at).total_seconds()
        return f"{100 if total <= 0 else min(100, int(100 * done / total))}%"

    # -- attachments ----------------------------------------------------------------------
    def attach(self, volume_id: str, instance_id: str, device: str) -> AttachmentRecord:
        now = self.clock.now()
        attached_at = now + seconds(self._wait("attach_seconds", self.timing.attach_seconds))
        arrival = self._wait("disk_arrival_seconds", self.timing.disk_arrival_seconds)
        record = AttachmentRecord(
            volume_id, instance_id, device, attached_at, attached_at + seconds(arrival), now
        )
        self.attachments.append(record)
        return record

    def detach(self, record: AttachmentRecord) -> None:
        self.settle()
        now = self.clock.now()
        record.detach_requested_at = now
        wait = self._wait("detach_seconds", self.timing.detach_seconds)
        record.detached_at = now + seconds(wait)
        self.settle()

    # -- events ---------------------------------------------------------------------------
    def queue_event(
        self, due: datetime, event: dict[str, Any], faultable: bool | None = None
    ) -> None:
        """Queue an event for EventBridge; an `event` fault may lose, delay or repeat it.

        `faultable` says whether the event is the workflow's (faults apply) or the
        simulator's own, whoever's thread queues it; None: the calling thread decides.
        """
        detail_type = str(event.get("detail-type", ""))
        if faultable is None:
            delays = self.faults.event_delivery(detail_type)
        else:
            with self.faults.suspended(not faultable):
                delays = self.faults.event_delivery(detail_type)
        for delay in delays:
            self.events.append(PendingEvent(due + seconds(delay), next(self._seq), event))

    def next_event_due(self) -> datetime | None:
        return min((e.due for e in self.events), default=None)

    def next_change_due(self) -> datetime | None:
        """The next event to deliver, or happening to apply (it may queue an event)."""
        dues = [h.next_due() for h in self.happenings]
        dues.append(self.next_event_due())
        return min((d for d in dues if d is not None), default=None)

    def pop_due_events(self) -> list[dict[str, Any]]:
        now = self.clock.now()
        due = sorted(e for e in self.events if e.due <= now)
        self.events = [e for e in self.events if e.due > now]
        return [e.event for e in due]

    # -- the timeline ---------------------------------------------------------------------
    def settle(self) -> None:
        """Apply, in time order, whatever happened on the helpers up to now."""
        now = self.clock.now()
        while True:
            candidates: list[tuple[datetime, int, Callable[[], None]]] = []
            for record in self.attachments:
                due = self._disk_change_due(record)
                if due is not None and due <= now:
                    candidates.append((due, 0, functools.partial(self._disk_change, record)))
            for index, happening in enumerate(self.happenings):
                due = happening.next_due()
                if due is not None and due <= now:
                    candidates.append((due, 1 + index, functools.partial(happening.happen, due)))
            if not candidates:
                return
            _, _, apply = min(candidates, key=lambda c: (c[0], c[1]))
            apply()

    @staticmethod
    def _disk_change_due(record: AttachmentRecord) -> datetime | None:
        if record.gone:
            return None
        if not record.appeared:
            if record.detach_requested_at is not None and (
                record.detach_requested_at <= record.appears_at
            ):
                return None  # detached before Windows ever saw it
            return record.appears_at
        return record.detach_requested_at

    def _disk_change(self, record: AttachmentRecord) -> None:
        host = self.hosts.get(record.instance_id)
        if not record.appeared:
            record.appeared = True
            if host is not None:
                host.add_disk(record.volume_id)
            return
        record.gone = True
        if host is not None:
            host.remove_disk(record.volume_id)


_EVENT_IDS = uuid.UUID("6a8f3c1e-2b4d-4e5f-8a9b-0c1d2e3f4a5b")


def arn(world: World, kind: str, resource_id: str) -> str:
    if kind == "snapshot":
        return f"arn:aws:ec2:{world.region}::snapshot/{resource_id}"
    return f"arn:aws:ec2:{world.region}:{world.account_id}:{kind}/{resource_id}"


def snapshot_event(
    world: World,
    event_kind: str,
    snapshot_id: str,
    source_arn: str,
    failure: str | None,
    started: datetime,
    duration: float,
) -> dict[str, Any]:
    """The EventBridge event EBS sends when a snapshot ends (FIELD-NOTES §2)."""
    ended = started + seconds(duration)
    return base_event(
        world,
        "EBS Snapshot Notification",
        ended,
        [arn(world, "snapshot", snapshot_id)],
        {
            "event": event_kind,
            "result": "failed" if failure else "succeeded",
            "cause": failure or "",
            "request-id": f"{snapshot_id}-request",
            "snapshot_id": arn(world, "snapshot", snapshot_id),
            "source": source_arn,
            "startTime": iso_ms(started),
            "endTime": iso_ms(ended),
        },
    )


def base_event(
    world: World,
    detail_type: str,
    moment: datetime,
    resources: list[str],
    detail: dict[str, Any],
    source: str = "aws.ec2",
) -> dict[str, Any]:
    seq = next(world._seq)
    return {
        "version": "0",
        "id": str(uuid.uuid5(_EVENT_IDS, f"{detail_type}/{seq}")),
        "detail-type": detail_type,
        "source": source,
        "account": world.account_id,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": world.region,
        "resources": resources,
        "detail": detail,
    }


def iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
