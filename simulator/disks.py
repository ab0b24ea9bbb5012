"""What lies on an EBS volume as Windows sees it: partitions, identity, VSS shadow copies."""

import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime

GIB = 1024**3
MIB = 1024**2


@dataclass
class ShadowCopy:
    """A persistent VSS shadow copy; it lives inside the volume it copies."""

    id: str
    set_id: str
    partition: int
    install_date: datetime
    persistent: bool = True
    client_accessible: bool = False
    # What its partition's files were when it was taken (name -> SHA-256), as one reads them
    # through its device object.
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class Partition:
    number: int
    size: int
    file_system: str
    drive_letter: str = ""
    # Data partitions (with a drive letter) are what a backup shadows and a restore checks.
    consistent: bool = True
    # The shadow copy whose point in time makes this partition consistent, if a backup said.
    backup_shadow_id: str = ""
    reverted_to: str = ""
    # The files on it, name -> SHA-256 of their bytes: only what a test wrote (the e2e kit).
    files: dict[str, str] = field(default_factory=dict)

    @property
    def holds_data(self) -> bool:
        return bool(self.drive_letter)


@dataclass
class DiskContent:
    """The bytes of one volume, reduced to what the restore can observe or must get right."""

    partition_style: str
    identity: str
    size: int
    partitions: list[Partition] = field(default_factory=list)
    shadow_copies: list[ShadowCopy] = field(default_factory=list)

    def clone(self) -> "DiskContent":
        return copy.deepcopy(self)

    def crash_copy(self) -> "DiskContent":
        """A point-in-time copy of a volume in use: writes may be half done (its files are
        the ones written up to now, those made after the backup's shadow copy included)."""
        content = self.clone()
        for partition in content.partitions:
            if partition.holds_data:
                partition.consistent = False
                partition.reverted_to = ""
        return content

    @property
    def consistent(self) -> bool:
        data = [p for p in self.partitions if p.holds_data]
        return bool(data) and all(p.consistent for p in data)

    def partition(self, number: int) -> Partition:
        return next(p for p in self.partitions if p.number == number)

    def shadow(self, shadow_id: str) -> ShadowCopy | None:
        wanted = shadow_id.lower()
        return next((s for s in self.shadow_copies if s.id.lower() == wanted), None)

    def revert(self, shadow: ShadowCopy) -> None:
        """The partition goes back to the shadow copy's time; its shadow copies are gone."""
        partition = self.partition(shadow.partition)
        partition.reverted_to = shadow.id
        partition.files = dict(shadow.files)
        partition.consistent = shadow.id.lower() == partition.backup_shadow_id.lower()
        self.shadow_copies = [s for s in self.shadow_copies if s.partition != shadow.partition]


def braced_guid(value: uuid.UUID) -> str:
    return "{" + str(value) + "}"


def new_identity(partition_style: str, seed: uuid.UUID) -> str:
    if partition_style == "MBR":
        return f"0x{seed.int & 0xFFFFFFFF:08X}"
    return braced_guid(seed).upper()


def windows_disk(
    *,
    size_gib: int,
    partition_style: str,
    drive_letters: list[str],
    system: bool,
    identity: str,
    unlettered: int = 0,
) -> DiskContent:
    """A disk as Windows setup or Disk Management lays it out, then one volume per letter,
    then `unlettered` NTFS volumes without a drive letter."""
    size = size_gib * GIB
    partitions: list[Partition] = []
    used = MIB  # partitions start at 1 MiB
    number = 1
    if partition_style == "GPT":
        if system:
            partitions.append(Partition(number, 100 * MIB, "FAT32"))  # EFI system partition
            used += 100 * MIB
            number += 1
        # The Microsoft Reserved partition: numbered, but it has no volume, so never listed.
        used += 16 * MIB
        number += 1
    elif system:
        partitions.append(Partition(number, 500 * MIB, "NTFS"))  # System Reserved
        used += 500 * MIB
        number += 1
    letters = [letter.upper() for letter in drive_letters]
    share = (size - used - MIB) // max(len(letters) + unlettered, 1) // MIB * MIB
    for letter in [*letters, *[""] * unlettered]:
        partitions.append(Partition(number, share, "NTFS", drive_letter=letter))
        number += 1
    return DiskContent(partition_style, identity, size, partitions)
