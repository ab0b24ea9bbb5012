"""A Windows instance's disks, and the disk tool (docs/disk-tool.md) running on it."""

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simulator.disks import DiskContent, ShadowCopy, new_identity

_NAMESPACE = uuid.UUID("3b0e3d4c-7f5a-4c1e-9a51-5d1f6c0e2a77")
_SERIAL_SUFFIX = "_00000001."
_HEX = re.compile(r"[0-9a-f]")

Contents = Callable[[str], DiskContent]


def serial_number(volume_id: str) -> str:
    """What Get-Disk reports for an EBS volume on Nitro: the ID without its dash, a suffix."""
    return volume_id.replace("-", "") + _SERIAL_SUFFIX


def serial_matches(serial: str, volume_id: str) -> bool:
    """The volume ID's `vol` + hex, and no longer hex run: vol-0ab must not match vol0abc."""
    prefix = volume_id.replace("-", "")
    return serial.startswith(prefix) and not _HEX.match(serial[len(prefix) : len(prefix) + 1])


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Disk:
    number: int
    volume_id: str
    serial_number: str
    online: bool
    read_only: bool
    is_system: bool = False
    is_boot: bool = False


@dataclass
class WindowsHost:
    """The disks one Windows instance sees, numbered as Windows numbers them."""

    instance_id: str
    contents: Contents
    disks: dict[int, Disk] = field(default_factory=dict)
    # Volumes whose disk signature/GUID Windows rewrote on a collision, in order.
    rewritten: list[str] = field(default_factory=list)

    @property
    def computer_name(self) -> str:
        return "EC2AMAZ-" + self.instance_id[-7:].upper()

    def add_disk(self, volume_id: str, *, own: bool = False, system: bool = False) -> Disk:
        """A disk arrives: our own disks online; a new EBS volume offline and read-only."""
        number = next(n for n in range(len(self.disks) + 1) if n not in self.disks)
        disk = Disk(
            number=number,
            volume_id=volume_id,
            serial_number=serial_number(volume_id),
            online=own,
            read_only=not own,
            is_system=system,
            is_boot=system,
        )
        self.disks[number] = disk
        return disk

    def remove_disk(self, volume_id: str) -> Disk | None:
        for number, disk in list(self.disks.items()):
            if disk.volume_id == volume_id:
                return self.disks.pop(number)
        return None

    def disk_of(self, volume_id: str) -> Disk | None:
        return next((d for d in self.disks.values() if d.volume_id == volume_id), None)

    def volume_path(self, disk: Disk, partition_number: int) -> str:
        # Windows names a volume when it mounts it; a clone gets a name of its own here.
        name = uuid.uuid5(_NAMESPACE, f"{self.instance_id}/{disk.serial_number}/{partition_number}")
        return "\\\\?\\Volume{" + str(name) + "}\\"

    def bring_online(self, disk: Disk) -> str:
        """Online the disk; a signature/GUID that another online disk has gets rewritten.

        Returns the identity the disk had before, which the caller may want to put back.
        """
        content = self.contents(disk.volume_id)
        original = content.identity
        clash = any(
            other.online and self.contents(other.volume_id).identity == original
            for other in self.disks.values()
            if other is not disk
        )
        if clash:
            seed = uuid.uuid5(_NAMESPACE, f"{self.instance_id}/{disk.volume_id}/{original}")
            content.identity = new_identity(content.partition_style, seed)
            self.rewritten.append(disk.volume_id)
        disk.online = True
        return original

    def visible_shadow_copies(self) -> list[tuple[Disk, ShadowCopy]]:
        """VSS sees the shadow copies of mounted volumes only, i.e. those on online disks."""
        return [
            (disk, shadow)
            for disk in self.disks.values()
            if disk.online
            for shadow in self.contents(disk.volume_id).shadow_copies
        ]


class ToolFailure(Exception):
    """The disk tool's script stopped: its message is what Windows said."""


@dataclass
class ToolRun:
    """One invocation of the disk tool: it starts, may take a while, then reports."""

    host: WindowsHost
    parameters: Mapping[str, str]
    finished_report: dict[str, Any] | None = None
    transcript: list[str] = field(default_factory=list)
    _disk: Disk | None = None
    _original_identity: str = ""
    _reverted: tuple[str, ...] = ()
    _was_offline: bool = True
    _was_read_only: bool = True

    @property
    def action(self) -> str:
        return self.parameters.get("Action", "")

    @property
    def volume_id(self) -> str:
        return self.parameters.get("VolumeId", "")

    def start(self, forced_error: str = "") -> bool:
        """Run up to the long part; False when the script has already ended (failed)."""
        try:
            if forced_error:
                raise ToolFailure(forced_error)
            if self.action == "Inspect":
                self.finished_report = self._inspect()
                return False
            self._begin_revert()
            return True
        except ToolFailure as failure:
            self.finished_report = self._failed(str(failure))
            return False

    def finish(self) -> dict[str, Any]:
        if self.finished_report is None:
            try:
                self.finished_report = self._end_revert()
            except ToolFailure as failure:
                self.finished_report = self._failed(str(failure))
        return self.finished_report

    @property
    def stdout(self) -> str:
        report = self.finish()
        return "\n".join([*self.transcript, json.dumps(report, separators=(",", ":"))]) + "\n"

    @property
    def exit_code(self) -> int:
        return 0 if self.finish()["ok"] else 1

    def _common(self, ok: bool, error: str | None) -> dict[str, Any]:
        return {
            "schema": 1,
            "action": self.action,
            "volume_id": self.volume_id,
            "ok": ok,
            "error": error,
            "disk": self._disk_report() if self._disk else None,
        }

    def _failed(self, error: str) -> dict[str, Any]:
        report = self._common(False, error)
        if self.action == "Inspect":
            report.update(partitions=[], shadow_copies=[])
        else:
            disk = self._disk
            report.update(
                reverted=list(self._reverted),
                identity_restored="",
                offline=disk is None or not disk.online,
            )
        self.transcript.append(f"ERROR: {error}")
        return report

    def _disk_report(self) -> dict[str, Any]:
        disk = self._disk
        assert disk is not None
        content = self.host.contents(disk.volume_id)
        return {
            "number": disk.number,
            "serial_number": disk.serial_number,
            "partition_style": content.partition_style,
            "identity": self._original_identity,
            "is_system": disk.is_system,
            "is_boot": disk.is_boot,
            "was_offline": self._was_offline,
            "was_read_only": self._was_read_only,
            "size": content.size,
        }

    def _find_disk(self) -> Disk:
        matches = [
            d for d in self.host.disks.values() if serial_matches(d.serial_number, self.volume_id)
        ]
        prefix = self.volume_id.replace("-", "")
        if len(matches) != 1:
            numbers = ", ".join(str(d.number) for d in matches) or "none"
            raise ToolFailure(
                f"Expected one disk with serial number {prefix}*, found {len(matches)} "
                f"(disks: {numbers})."
            )
        return matches[0]

    def _take(self, disk: Disk) -> None:
        self._disk = disk
        self._was_offline = not disk.online
        self._was_read_only = disk.read_only
        self._original_identity = self.host.contents(disk.volume_id).identity
        self.transcript.append(
            f"Disk {disk.number} serial {disk.serial_number} "
            f"{'offline' if not disk.online else 'online'}"
            f"{', read-only' if disk.read_only else ''}."
        )

    def _inspect(self) -> dict[str, Any]:
        disk = self._find_disk()
        self._take(disk)
        original = self.host.bring_online(disk)
        content = self.host.contents(disk.volume_id)
        partitions = [
            {
                "number": p.number,
                "volume_path": self.host.volume_path(disk, p.number),
                "file_system": p.file_system,
                "size": p.size,
            }
            for p in content.partitions
        ]
        shadows = [
            {
                "id": s.id,
                "set_id": s.set_id,
                "volume_path": self.host.volume_path(disk, s.partition),
                "install_date": iso(s.install_date),
                "persistent": s.persistent,
                "client_accessible": s.client_accessible,
            }
            for s in content.shadow_copies
        ]
        content.identity = original
        disk.online = False
        self.transcript.append(
            f"{len(partitions)} partition(s), {len(shadows)} shadow copy(ies); disk offline again."
        )
        report = self._common(True, None)
        report.update(partitions=partitions, shadow_copies=shadows)
        return report

    def _begin_revert(self) -> None:
        number_text = self.parameters.get("DiskNumber", "")
        if not number_text:
            raise ToolFailure("Revert needs DiskNumber.")
        disk = self.host.disks.get(int(number_text))
        if disk is None:
            raise ToolFailure(
                f"Get-Disk : No MSFT_Disk objects found with property 'Number' equal to "
                f"'{int(number_text)}'.  Verify the value of the property and retry."
            )
        if not serial_matches(disk.serial_number, self.volume_id):
            raise ToolFailure(
                f"Disk {disk.number} has serial number {disk.serial_number}, which is not "
                f"{self.volume_id}: refusing to touch it."
            )
        self._take(disk)
        self.host.bring_online(disk)
        disk.read_only = False
        self.transcript += [
            "Microsoft DiskShadow version 1.0",
            "Copyright (C) 2013 Microsoft Corporation",
            f"On computer:  {self.host.computer_name}",
        ]

    def _end_revert(self) -> dict[str, Any]:
        disk = self._disk
        if disk is None or self.host.disk_of(disk.volume_id) is not disk:
            raise ToolFailure("The device is not ready. (Exception from HRESULT: 0x80070015)")
        ids = [i for i in self.parameters.get("ShadowCopyIds", "").split(",") if i]
        reverted: list[str] = []
        content = self.host.contents(disk.volume_id)
        for shadow_id in ids:
            self.transcript.append(f"-> revert {shadow_id}")
            visible = {s.id.lower(): (d, s) for d, s in self.host.visible_shadow_copies()}
            found = visible.get(shadow_id.lower())
            if found is None:
                raise ToolFailure(
                    f'COM call "m_pVssObject->RevertToSnapshot" failed.\r\n'
                    f"VSS_E_OBJECT_NOT_FOUND (0x80042308): the shadow copy {shadow_id} "
                    "was not found."
                )
            owner, shadow = found
            if owner is not disk:
                raise ToolFailure(
                    f"Shadow copy {shadow_id} is on disk {owner.number}, not on disk "
                    f"{disk.number}: VSS_E_VOLUME_IN_USE, the volume is in use."
                )
            if not shadow.persistent:
                raise ToolFailure(
                    f"VSS_E_UNSUPPORTED_CONTEXT (0x8004231B): shadow copy {shadow_id} is not "
                    "persistent and cannot be reverted."
                )
            content.revert(shadow)
            reverted.append(shadow.id)
            self._reverted = tuple(reverted)
            self.transcript.append(f"The shadow copy {shadow.id} was reverted.")
        identity = self.parameters.get("DiskIdentity", "") or content.identity
        content.identity = identity
        disk.online = False
        report = self._common(True, None)
        report.update(reverted=reverted, identity_restored=identity, offline=True)
        return report
