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
    # MSFT_Disk.UniqueId: stays with the disk, while its number goes to the next disk attached.
    unique_id: str = ""


@dataclass(frozen=True)
class ValidationScript:
    """What an operator's validation script does when the Check runs it."""

    exit_code: int = 0
    output: str = ""
    # Who besides SYSTEM and Administrators may change it (its ACL), e.g. "BUILTIN\\Users".
    writable_by: tuple[str, ...] = ()


# Folders Windows lets every local user write in, as installed (a minimal ACL model): a script
# there, or under them, is one any user could change (Windows Server defaults; "Check" on a real
# instance with `icacls`, docs/simulated.md). C:\ProgramData: BUILTIN\Users may create files and
# folders.
USER_WRITABLE_FOLDERS = {
    "c:\\users\\public": "BUILTIN\\Users",
    "c:\\windows\\temp": "BUILTIN\\Users",
    "c:\\programdata": "BUILTIN\\Users",
}
# MSFT_Volume Repair's return value 43006 (Microsoft: MSFT_Volume Repair method), as
# Repair-Volume throws it: whether -Scan on a read-only disk always gets it is unconfirmed,
# and the simulated Windows always refuses (the stricter guess).
READ_ONLY_REFUSAL = (
    "Repair-Volume: The requested operation cannot be performed when the drive is read only. "
    "(MSFT_Volume Repair 43006)"
)
# chkdsk with no switch (its read-only mode): exit code 0 no errors, 3 errors found and not
# fixed (or the disk could not be checked), as Microsoft's chkdsk page lists them.
CHKDSK_RESULTS = {
    0: "NoErrorsFound",
    1: "ErrorsFixed",
    2: "CleanupNeeded",
    3: "ErrorsFoundOrNotChecked",
}
SCAN_IMPOSSIBLE = "ScanImpossible"
# The disk tool waits for VSS to list no revert on the disk's volumes, looking every 5 s for up
# to 60 minutes (documents/disk-tool.ps1, Wait-RevertEnd).
REVERT_POLL_SECONDS = 5
REVERT_WAIT_LIMIT = 3600
# GetCommandInvocation keeps this much of stdout; the script counts each line and its CRLF.
STDOUT_KEPT = 24_000


@dataclass
class WindowsHost:
    """The disks one Windows instance sees, numbered as Windows numbers them."""

    instance_id: str
    contents: Contents
    disks: dict[int, Disk] = field(default_factory=dict)
    # Scripts an operator put on the instance, by path (Windows paths ignore case).
    validation_scripts: Mapping[str, ValidationScript] = field(default_factory=dict)
    # Volumes whose disk signature/GUID Windows rewrote on a collision, in order.
    rewritten: list[str] = field(default_factory=list)
    # Every change the disk tool made to a disk: (volume ID, what), in order.
    changes: list[tuple[str, str]] = field(default_factory=list)
    # Processes on the machine watching Win32_ShadowCopy: each hears of every shadow copy
    # made of one of its volumes (volume ID, shadow copy) as soon as it exists.
    shadow_copy_watchers: list[Callable[[str, ShadowCopy], None]] = field(default_factory=list)
    # "refused": Repair-Volume -Scan fails on a read-only disk (43006); "allowed": it scans.
    read_only_scan: str = "refused"
    # PowerShell modules installed for all users, by name: their version.
    powershell_modules: Mapping[str, str] = field(default_factory=dict)
    # Each reboot of the machine and why (an SSM command that exited 3010, a scenario step).
    reboots: list[str] = field(default_factory=list)
    # Reboots during which an attached disk carried the boot disk's signature/GUID.
    boot_hazards: list[str] = field(default_factory=list)

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
            unique_id="{"
            + str(uuid.uuid5(_NAMESPACE, f"{self.instance_id}/{volume_id}/uid"))
            + "}",
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

    def disk_by_unique_id(self, unique_id: str) -> Disk | None:
        """Get-Disk -UniqueId."""
        return next((d for d in self.disks.values() if d.unique_id == unique_id), None)

    def copies_of(self, shadow_id: str) -> list[tuple[Disk, ShadowCopy]]:
        """The Win32_ShadowCopy objects with this ID: one per online disk that holds it (a
        clone holds the shadow copies of the disk it was cloned from), by disk number."""
        wanted = shadow_id.lower()
        return sorted(
            ((d, s) for d, s in self.visible_shadow_copies() if s.id.lower() == wanted),
            key=lambda pair: pair[0].number,
        )

    def volume_path(self, disk: Disk, partition_number: int) -> str:
        # Windows names a volume when it mounts it; a clone gets a name of its own here.
        name = uuid.uuid5(_NAMESPACE, f"{self.instance_id}/{disk.serial_number}/{partition_number}")
        return "\\\\?\\Volume{" + str(name) + "}\\"

    def colliding(self, disk: Disk, identity: str) -> list[int]:
        """The online disks other than `disk` whose MBR signature / GPT GUID is `identity`."""
        return sorted(
            other.number
            for other in self.disks.values()
            if other is not disk and other.online
            if self.contents(other.volume_id).identity == identity
        )

    def bring_online(self, disk: Disk) -> str:
        """Online the disk; a signature/GUID that another online disk has gets rewritten,
        which Windows cannot do on a read-only disk (FIELD-NOTES section 9): refused then.

        Returns the identity the disk had before, which the caller may want to put back.
        """
        content = self.contents(disk.volume_id)
        original = content.identity
        clash = bool(self.colliding(disk, original))
        if clash and disk.read_only:
            raise ToolFailure(
                f"Set-Disk: disk {disk.number} has the signature/GUID of an online disk and is "
                "read-only: Windows cannot write it a new one, and it stays offline."
            )
        if clash:
            seed = uuid.uuid5(_NAMESPACE, f"{self.instance_id}/{disk.volume_id}/{original}")
            content.identity = new_identity(content.partition_style, seed)
            self.rewritten.append(disk.volume_id)
        disk.online = True
        return original

    def set_identity(self, disk: Disk, identity: str) -> None:
        """Set-Disk -Signature / -Guid: only on an online, writable disk (MSFT_Disk
        SetAttributes: 41003 "the disk is offline"), and never to the identity of another
        online disk (simulated refusal: two online disks cannot share one)."""
        if not disk.online:
            raise ToolFailure(
                f"Set-Disk: The disk is offline. (MSFT_Disk 41003, disk {disk.number})"
            )
        if disk.read_only or self.colliding(disk, identity):
            raise ToolFailure(
                f"Set-Disk: disk {disk.number} cannot take identity {identity}: "
                + ("it is read-only" if disk.read_only else "an online disk has it")
            )
        self.contents(disk.volume_id).identity = identity

    def write_identity_raw(self, disk: Disk, identity: str) -> str:
        """The signature/GUID written to the disk's own sectors through \\\\.\\PhysicalDriveN
        (MBR byte 440, or both GPT headers and their CRC32s); read back. Only an offline disk
        is written (an online one has mounted volumes; simulated so), never a read-only one."""
        if disk.online or disk.read_only:
            raise ToolFailure(
                f"disk {disk.number} must be offline and writable to take back identity {identity}"
            )
        self.contents(disk.volume_id).identity = identity
        return self.contents(disk.volume_id).identity

    def reboot(self, why: str) -> None:
        """The machine restarts. The BCD names the boot disk, and MountedDevices each drive
        letter, by MBR signature or GPT GUID (FIELD-NOTES section 9): an attached disk that
        carries the boot disk's identity then may be the one booted from. Recorded, never
        resolved in our favour."""
        self.reboots.append(why)
        boot = next((d for d in self.disks.values() if d.is_boot), None)
        if boot is None:
            return
        identity = self.contents(boot.volume_id).identity
        for disk in self.disks.values():
            if disk is not boot and self.contents(disk.volume_id).identity == identity:
                self.boot_hazards.append(
                    f"{why}: disk {disk.number} ({disk.volume_id}) carries the boot disk's "
                    f"identity {identity}; the boot manager may start from it"
                )

    def validation_script(self, path: str) -> ValidationScript | None:
        wanted = path.lower()
        return next((s for p, s in self.validation_scripts.items() if p.lower() == wanted), None)

    def foreign_writers(self, path: str) -> list[str]:
        """Who besides SYSTEM and Administrators could change the script at `path`: its own
        ACL, or a folder on its way that every user may write in."""
        script = self.validation_script(path)
        found = [
            f"{path} may be written by {who}" for who in (script.writable_by if script else ())
        ]
        folder = path.lower().rsplit("\\", 1)[0]
        found += [
            f"{prefix} may be written by {who}"
            for prefix, who in USER_WRITABLE_FOLDERS.items()
            if folder == prefix or folder.startswith(prefix + "\\")
        ]
        return found

    def visible_shadow_copies(self) -> list[tuple[Disk, ShadowCopy]]:
        """VSS sees the shadow copies of mounted volumes only, i.e. those on online disks."""
        return [
            (disk, shadow)
            for disk in self.disks.values()
            if disk.online
            for shadow in self.contents(disk.volume_id).shadow_copies
        ]


# Repair-Volume -Scan checks these; FAT32 (the EFI system partition) it leaves alone.
SCANNED_FILE_SYSTEMS = frozenset({"NTFS", "REFS"})
NO_ERRORS_FOUND = "NoErrorsFound"
# chkdsk /scan on a volume whose NTFS log holds half-done writes. Simulated: a volume that
# is not at the backup's point in time (a crash copy never reverted, or reverted to the
# wrong shadow copy) always scans as this, and a consistent one never does.
HALF_DONE_WRITES = "SpotFixNeeded"
# The tail of a validation script's output the report keeps (SSM keeps 24,000 characters).
VALIDATION_OUTPUT_LINES = 20
VALIDATION_OUTPUT_CHARS = 2000


class ToolFailure(Exception):
    """The disk tool's script stopped: its message is what Windows said."""


@dataclass
class ToolRun:
    """One invocation of the disk tool: it starts, may take a while, then reports."""

    host: WindowsHost
    parameters: Mapping[str, str]
    # What the next scan finds on the disk's first volume, whatever is on it (a fault).
    forced_scan_result: str = ""
    # A line printed after the report (a fault: something wrote to stdout after it).
    trailing_output: str = ""
    # How long VSS goes on reverting after DiskShadow returns (a fault: an asynchronous revert).
    revert_lingers: float = 0.0
    finished_report: dict[str, Any] | None = None
    transcript: list[str] = field(default_factory=list)
    _disk: Disk | None = None
    # Taken when the disk is found: the script names the disk by these from then on.
    _unique_id: str = ""
    _serial: str = ""
    _original_identity: str = ""
    _identity_to_put_back: str = ""
    # Set just before the first change: from then on the script's `finally` puts the disk back.
    _touched: bool = False
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
        """Run up to the long part; False when the script has already ended."""
        try:
            if forced_error:
                raise ToolFailure(forced_error)
            if self.action == "Inspect":
                self.finished_report = self._fitted(self._inspect())
                return False
            if self.action == "Revert":
                self._begin_revert()
            elif self.action == "Check":
                self._begin_check()
            else:
                raise ToolFailure(f"unknown Action {self.action}")
            return True
        except ToolFailure as failure:
            self.finished_report = self._failed(str(failure))
            return False

    def finish(self) -> dict[str, Any]:
        if self.finished_report is None:
            try:
                self.finished_report = (
                    self._end_revert() if self.action == "Revert" else self._end_check()
                )
            except ToolFailure as failure:
                self.finished_report = self._failed(str(failure))
            self.finished_report = self._fitted(self.finished_report)
        return self.finished_report

    def revert_wait_seconds(self) -> float:
        """How long the Revert polls `vssadmin query reverts` after DiskShadow returns."""
        if self.revert_lingers <= 0:
            return 0.0
        polls = -(-self.revert_lingers // REVERT_POLL_SECONDS)
        return min(polls * REVERT_POLL_SECONDS, REVERT_WAIT_LIMIT)

    def _fitted(self, report: dict[str, Any]) -> dict[str, Any]:
        """The script's last step: a report that would not fit after what it wrote is replaced
        by a failed one that says so, its lists left out (what a Revert reverted stays)."""
        written = sum(len(line) + 2 for line in self.transcript)
        text = json.dumps(report, separators=(",", ":"))
        if written + len(text) + 2 <= STDOUT_KEPT:
            return report
        fitted = dict(report)
        listed = 0
        for name in ("partitions", "copies", "volumes"):
            if name in fitted:
                listed += len(fitted[name])
                fitted[name] = []
        if "sets" in fitted:
            fitted["sets"] = []
        error = (
            f"the report ({len(text):,} characters, {listed} listed items) would not fit in "
            f"the {STDOUT_KEPT:,} characters of stdout SSM keeps, after {written:,} written "
            "before it"
        )
        fitted["error"] = f"{report['error']}; then: {error}" if report["error"] else error
        fitted["ok"] = False
        if "passed" in fitted:
            fitted["passed"] = False
        return fitted

    @property
    def stdout(self) -> str:
        report = self.finish()
        after = [self.trailing_output] if self.trailing_output else []
        return (
            "\n".join([*self.transcript, json.dumps(report, separators=(",", ":")), *after]) + "\n"
        )

    @property
    def exit_code(self) -> int:
        return 0 if self.finish()["ok"] else 1

    def _common(self, ok: bool, error: str | None) -> dict[str, Any]:
        return {
            "schema": 2,
            "action": self.action,
            "volume_id": self.volume_id,
            "ok": ok,
            "error": error,
            "disk": self._disk_report() if self._disk else None,
        }

    def _failed(self, error: str) -> dict[str, Any]:
        self.transcript.append(f"ERROR: {error}")
        restored = self._put_back()
        disk = self._disk
        offline = disk is None or not disk.online
        report = self._common(False, error)
        if self.action == "Revert":
            report.update(
                reverted=list(self._reverted), identity_restored=restored, offline=offline
            )
        elif self.action == "Check":
            report.update(
                volumes=[],
                validation=None,
                passed=False,
                identity_restored=restored,
                offline=offline,
            )
        else:
            report.update(partitions=[], sets=[], copies=[])
        return report

    def _put_back(self) -> str:
        """The script's `finally`, once it changed the disk: its identity, then offline."""
        if self._disk is None or not self._touched:
            return ""
        self._touched = False
        # Get-OurDisk before every Set-OurDisk: by UniqueId, the serial re-checked. A disk gone
        # (force-detached) is left alone, and so is whatever disk now has its number.
        disk = self._our_disk()
        if disk is None:
            return ""
        content = self.host.contents(disk.volume_id)
        target = self._identity_to_put_back
        if content.identity != target:
            colliding = self.host.colliding(disk, target)
            if not colliding:
                if not disk.online:
                    self.host.bring_online(disk)
                    self._changed(disk, "online")
                if disk.read_only:
                    disk.read_only = False
                    self._changed(disk, "read-write")
                self.host.set_identity(disk, target)
                self._changed(disk, "identity")
            elif self.action == "Inspect" or not self._last_action:
                # The clone keeps the identity Windows gave it while attached: a reboot cannot
                # start the helper from it. The last action puts the original back.
                self.transcript.append(
                    f"disk {disk.number} keeps identity {content.identity} until the last "
                    f"action: {target} is that of disk(s) {','.join(map(str, colliding))}"
                )
            else:
                # Offline first, then written to its sectors; the workflow detaches it next.
                if disk.read_only:
                    disk.read_only = False
                    self._changed(disk, "read-write")
                if disk.online:
                    disk.online = False
                    self._changed(disk, "offline")
                self.host.write_identity_raw(disk, target)
                self._changed(disk, "identity written offline")
        # Read-only as found (a revert leaves it cleared), on an online disk only: one whose
        # identity went back through its sectors is offline and writable, and detached next.
        if self.action != "Revert" and disk.online and disk.read_only != self._was_read_only:
            disk.read_only = self._was_read_only
            self._changed(disk, "read-only")
        # Revert and Check always leave the disk offline; Inspect as it found it.
        online = self.action == "Inspect" and not self._was_offline
        if disk.online != online:
            disk.online = online
            self._changed(disk, "offline")
        return content.identity

    @property
    def _last_action(self) -> bool:
        return self.parameters.get("LastAction", "") != "false"

    def _our_disk(self) -> Disk | None:
        """Get-OurDisk: the disk with the UniqueId taken when it was found, if its serial is
        still the one it had then."""
        now = self.host.disk_by_unique_id(self._unique_id)
        return now if now is not None and now.serial_number == self._serial else None

    def _changed(self, disk: Disk, what: str) -> None:
        self.host.changes.append((disk.volume_id, what))

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
        if len(matches) != 1:
            serials = ", ".join(f"{d.number}={d.serial_number}" for d in self.host.disks.values())
            raise ToolFailure(
                f"{len(matches)} disks have the serial number of {self.volume_id}, expected "
                f"exactly one; disks seen: {serials}"
            )
        return matches[0]

    def _take(self, disk: Disk) -> None:
        self._disk = disk
        self._unique_id, self._serial = disk.unique_id, disk.serial_number
        self._was_offline = not disk.online
        self._was_read_only = disk.read_only
        self._original_identity = self.host.contents(disk.volume_id).identity
        self._identity_to_put_back = self._original_identity
        self.transcript.append(
            f"Disk {disk.number} serial {disk.serial_number} "
            f"{'offline' if not disk.online else 'online'}"
            f"{', read-only' if disk.read_only else ''}."
        )

    def _numbered_disk(self) -> Disk:
        """Revert and Check: the disk Inspect found, refused unless it is still that disk."""
        if not (self.parameters.get("DiskNumber") and self.parameters.get("DiskIdentity")):
            raise ToolFailure(f"{self.action} needs DiskNumber and DiskIdentity")
        number = int(self.parameters["DiskNumber"])
        disk = self.host.disks.get(number)
        if disk is None:
            raise ToolFailure(
                f"No MSFT_Disk objects found with property 'Number' equal to '{number}'.  "
                "Verify the value of the property and retry."
            )
        self._take(disk)
        if not serial_matches(disk.serial_number, self.volume_id):
            raise ToolFailure(
                f"disk {number} has serial number {disk.serial_number}, not that of "
                f"{self.volume_id}"
            )
        if disk.is_system or disk.is_boot:
            raise ToolFailure(f"disk {number} is a system or boot disk; nothing done")
        identity = self.parameters["DiskIdentity"]
        style = "MBR" if identity.startswith("0x") else "GPT"
        if self.host.contents(disk.volume_id).partition_style != style:
            raise ToolFailure(f"disk {number} is not {style} like identity {identity}")
        self._identity_to_put_back = identity
        return disk

    def _present_disk(self) -> Disk:
        disk = self._our_disk() if self._disk is not None else None
        if disk is None:
            raise ToolFailure(
                f"the disk with UniqueId {self._unique_id} and serial number {self._serial} "
                "is no longer attached; nothing changed"
            )
        return disk

    def _inspect(self) -> dict[str, Any]:
        disk = self._find_disk()
        self._take(disk)
        if not self._original_identity:
            raise ToolFailure(f"disk {disk.number} has no MBR signature or GPT GUID")
        # A disk already online, and a system or boot disk, are listed as they are.
        if not disk.online and not (disk.is_system or disk.is_boot):
            self._open(disk, read_only=True)
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
        # As the script's Set-ReportShadowCopy lists them: each set ID once, a copy naming its
        # set by index and its volume by partition number (docs/disk-tool.md).
        sets = list(dict.fromkeys(s.set_id for s in content.shadow_copies))
        copies = [
            {
                "i": s.id,
                "s": sets.index(s.set_id),
                "p": s.partition,
                "t": iso(s.install_date),
                "f": ("p" if s.persistent else "") + ("c" if s.client_accessible else ""),
            }
            for s in content.shadow_copies
        ]
        self._put_back()
        self.transcript.append(
            f"{len(partitions)} partition(s), {len(copies)} shadow copy(ies); disk put back."
        )
        report = self._common(True, None)
        report.update(partitions=partitions, sets=sets, copies=copies)
        return report

    def _open(self, disk: Disk, read_only: bool) -> None:
        self._touched = True
        identity = self.host.contents(disk.volume_id).identity
        if not disk.online and self.host.colliding(disk, identity):
            # Windows must write a new identity to online it: read-only cleared while offline
            # (Set-Disk -IsReadOnly on an offline disk: allowed here, a guess to confirm).
            if disk.read_only:
                disk.read_only = False
                self._changed(disk, "read-write")
        elif read_only and not disk.read_only:
            disk.read_only = True  # first: nothing may be written while it comes online
            self._changed(disk, "read-only")
        if not disk.online:
            self.host.bring_online(disk)
            self._changed(disk, "online")
        if disk.read_only != read_only:
            disk.read_only = read_only
            self._changed(disk, "read-write")
        self.transcript.append(
            f"disk {disk.number} online, read-only {read_only}; identity now "
            f"{self.host.contents(disk.volume_id).identity}"
        )

    def _begin_revert(self) -> None:
        if not self.parameters.get("ShadowCopyIds"):
            raise ToolFailure("Revert needs ShadowCopyIds")
        disk = self._numbered_disk()
        self._open(disk, read_only=False)
        # Win32_ShadowCopy lists every mounted volume's; only this disk's may be reverted.
        on_disk = [s.id for owner, s in self.host.visible_shadow_copies() if owner is disk]
        wanted = self.parameters["ShadowCopyIds"].split(",")
        missing = [i for i in wanted if i.lower() not in {s.lower() for s in on_disk}]
        if missing:
            raise ToolFailure(
                f"shadow copies {','.join(missing)} are not on the volumes of disk "
                f"{disk.number} (these are: {','.join(on_disk)}); nothing reverted"
            )
        # `revert {ID}` takes only an ID: each must exist once among all Win32_ShadowCopy.
        # (Volume GUID paths are per disk here, so a path in two partitions cannot happen.)
        for shadow_id in wanted:
            copies = len(self.host.copies_of(shadow_id))
            if copies != 1:
                raise ToolFailure(
                    f"shadow copy {shadow_id} exists {copies} times on this instance, not once "
                    "(a clone of an attached disk?); nothing reverted"
                )
        self.transcript += [
            "Microsoft DiskShadow version 1.0",
            "Copyright (C) 2013 Microsoft Corporation",
            f"On computer:  {self.host.computer_name}",
        ]

    def _end_revert(self) -> dict[str, Any]:
        disk = self._present_disk()
        ids = self.parameters["ShadowCopyIds"].split(",")
        reverted: list[str] = []
        for shadow_id in ids:
            self.transcript.append(f"-> revert {shadow_id}")
            # DiskShadow is given only the ID: VSS reverts the copy it finds, whichever disk
            # holds it (simulated: the first by disk number). Hence the check that it is unique.
            found = self.host.copies_of(shadow_id)
            owner = found[0][0] if found else disk
            content = self.host.contents(owner.volume_id)
            shadow = content.shadow(shadow_id)
            if shadow is None:
                # Reverting a volume deletes its other shadow copies: two of one volume fail.
                raise ToolFailure(
                    f"DiskShadow reverted {len(reverted)} of {len(ids)} shadow copies: "
                    f'COM call "m_pVssObject->RevertToSnapshot" failed. '
                    f"VSS_E_OBJECT_NOT_FOUND (0x80042308): the shadow copy {shadow_id} was "
                    "not found."
                )
            if not shadow.persistent:
                raise ToolFailure(
                    f"DiskShadow reverted {len(reverted)} of {len(ids)} shadow copies: "
                    f"VSS_E_UNSUPPORTED_CONTEXT (0x8004231B): shadow copy {shadow_id} is not "
                    "persistent and cannot be reverted."
                )
            content.revert(shadow)
            self._changed(owner, f"reverted {shadow.id}")
            reverted.append(shadow.id)
            self._reverted = tuple(reverted)
            self.transcript.append(f"The shadow copy {shadow.id} was reverted.")
        if self.revert_lingers > REVERT_WAIT_LIMIT:
            # VSS goes on reverting: the script leaves the disk as it is (no identity put
            # back, no offline) and says so.
            self._touched = False
            raise ToolFailure(
                f"VSS still lists a revert on the volumes of disk {disk.number} after 60 "
                "minutes; the disk is left online as it is, since VSS goes on reverting it"
            )
        if self.revert_lingers > 0:
            self.transcript.append(
                f"VSS lists no revert on the volumes of disk {disk.number} "
                f"({self.revert_wait_seconds():.0f} s after DiskShadow returned)"
            )
        restored = self._put_back()
        report = self._common(True, None)
        report.update(reverted=reverted, identity_restored=restored, offline=not disk.online)
        return report

    def _begin_check(self) -> None:
        disk = self._numbered_disk()
        script = self.parameters.get("ValidationScript", "")
        if script and self.host.validation_script(script) is None:
            raise ToolFailure(
                f"validation script {script} not found on this instance; nothing done"
            )
        writers = self.host.foreign_writers(script) if script else []
        if writers:
            raise ToolFailure(
                f"validation script {script} could be changed by non-administrators: "
                f"{'; '.join(writers[:3])}; refused, nothing done"
            )
        self._open(disk, read_only=True)

    def _end_check(self) -> dict[str, Any]:
        disk = self._present_disk()
        content = self.host.contents(disk.volume_id)
        volumes: list[dict[str, Any]] = []
        for partition in content.partitions:
            if partition.file_system.upper() not in SCANNED_FILE_SYSTEMS:
                continue
            found = NO_ERRORS_FOUND if partition.consistent else HALF_DONE_WRITES
            if self.forced_scan_result and not volumes:
                found = self.forced_scan_result
            scanner, result, error = self._scan(disk, found)
            path = self.host.volume_path(disk, partition.number)
            volumes.append(
                {
                    "number": partition.number,
                    "volume_path": path,
                    "file_system": partition.file_system,
                    "scanner": scanner,
                    "scan_result": result,
                    "scan_error": error,
                    "passed": result == NO_ERRORS_FOUND,
                }
            )
            self.transcript.append(f"{path} {partition.file_system}: {result} (0 s)")
        validation = self._validate()
        restored = self._put_back()
        report = self._common(True, None)
        report.update(
            volumes=volumes,
            validation=validation,
            passed=bool(volumes)
            and all(v["passed"] for v in volumes)
            and (validation is None or validation["passed"]),
            identity_restored=restored,
            offline=not disk.online,
        )
        return report

    def _scan(self, disk: Disk, found: str) -> tuple[str, str, str]:
        """(scanner, result, error) of Invoke-VolumeScan for a volume where a scan finds
        `found` (a Repair-Volume result, or ScanImpossible: no scanner can run)."""
        if found == SCAN_IMPOSSIBLE:
            return (
                "chkdsk",
                SCAN_IMPOSSIBLE,
                "Repair-Volume: Access is denied. (HRESULT 0x80070005); chkdsk: Cannot open "
                "volume for direct access.",
            )
        if not (disk.read_only and self.host.read_only_scan == "refused"):
            return "Repair-Volume", found, ""
        code = 0 if found == NO_ERRORS_FOUND else 3
        result = CHKDSK_RESULTS[code]
        error = READ_ONLY_REFUSAL
        if code:
            error += f"; chkdsk exit code {code}: Windows has found problems with the file system."
        return "chkdsk", result, error

    def _validate(self) -> dict[str, Any] | None:
        """`& $ValidationScript -VolumePath <paths>`: its exit code is data, never ours."""
        path = self.parameters.get("ValidationScript", "")
        script = self.host.validation_script(path) if path else None
        if script is None:  # none asked for (a missing one was refused before the scan)
            return None
        lines = [line for line in script.output.splitlines() if line.strip()]
        output = "\n".join(lines[-VALIDATION_OUTPUT_LINES:])[-VALIDATION_OUTPUT_CHARS:]
        self.transcript.append(f"{path}: exit code {script.exit_code} (0 s)")
        return {
            "script": path,
            "exit_code": script.exit_code,
            "passed": script.exit_code == 0,
            "output": output,
        }
