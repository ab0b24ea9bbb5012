"""What lies on an EBS volume as Windows sees it: partitions, identity, VSS shadow copies."""

import copy
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import datetime

GIB = 1024**3
MIB = 1024**2
# EBS stores and compares snapshots in blocks of 512 KiB: ListChangedBlocks answers
# BlockSize 524288 (EBS direct APIs reference, ListChangedBlocks, "Response Elements").
BLOCK_SIZE = 512 * 1024

# The block model (what simulator/ebs.py answers ListChangedBlocks from). Assumed, not
# measured; small on purpose:
# - each backup finds DAILY_CHANGE of each data partition rewritten since the one before;
# - while the shadow copies exist and the snapshot has not started (the timing key
#   shadow_copy_seconds), each data partition is written at WRITE_RATE; VSS copies each
#   block's old contents into the shadow copy's diff area on the same volume first
#   (copy-on-write: Microsoft Learn, "How Volume Shadow Copy Service Works", differential
#   copy), so each such write costs the volume twice its size;
# - a revert writes the diff area's old blocks back: the consistent snapshot differs from
#   its source by what was written after the shadow copy (the diff area's release and
#   NTFS's own metadata writes are left out).
# Blocks are placed one after another from the start of each partition (wrapping), so a
# write changes new blocks until the partition has been written through.
DAILY_CHANGE = 0.01
WRITE_RATE = 8 * MIB  # bytes per second

_writes = itertools.count(1)


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
    # The blocks whose contents it holds in its diff area: (first block, count). The block
    # model's bookkeeping (here and below, compare=False): what the applications write is
    # not what a restore may change, so two disks compare as Windows sees them.
    diff_area: list[tuple[int, int]] = field(default_factory=list, compare=False)


@dataclass(frozen=True)
class Write:
    """Blocks [first, first + count) of a volume, written by one write (its token)."""

    first: int
    count: int
    token: int


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
    written: int = field(default=0, compare=False)  # blocks written in it (the next lands there)

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
    # EBS: the volume the chain of snapshots began with. A volume made from a snapshot, and
    # a snapshot of a volume, continue their source's chain (EBS User Guide, "How Amazon
    # EBS snapshots work"); ListChangedBlocks compares only snapshots of one lineage.
    lineage: str = field(default="", compare=False)
    writes: list[Write] = field(default_factory=list, compare=False)  # oldest first

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
        for first, count in shadow.diff_area:
            self._write(first, count)

    # -- blocks (the model above) -------------------------------------------------------------
    def blocks(self) -> dict[int, int]:
        """Block index -> the token of the write that put its contents there."""
        found: dict[int, int] = {}
        for write in self.writes:
            for index in range(write.first, write.first + write.count):
                found[index] = write.token
        return found

    def day_of_writes(self) -> None:
        """What a day's work rewrites on each data partition before the next backup."""
        for partition in self.partitions:
            if partition.holds_data:
                self._write_on(partition, int(partition.size * DAILY_CHANGE) // BLOCK_SIZE)

    def keep_writing(self, seconds: float) -> None:
        """The writers, released by the shadow copies' creation, go on for `seconds`."""
        count = int(WRITE_RATE * seconds) // BLOCK_SIZE
        for partition in self.partitions:
            if not partition.holds_data or count <= 0:
                continue
            written = self._write_on(partition, count)
            for shadow in self.shadow_copies:
                if shadow.partition == partition.number:
                    shadow.diff_area.extend(written)
                    self._write_on(partition, count)  # the old contents, into its diff area

    def _write_on(self, partition: Partition, count: int) -> list[tuple[int, int]]:
        """`count` blocks written where the partition's next write lands: (first, count)."""
        start = self._first_block(partition)
        size = max(partition.size // BLOCK_SIZE, 1)
        offset = partition.written % size
        head = min(count, size - offset)
        written = [(start + offset, head), (start, min(count - head, offset))]
        written = [(first, n) for first, n in written if n > 0]
        for first, n in written:
            self._write(first, n)
        partition.written += count
        return written

    def _first_block(self, partition: Partition) -> int:
        """Partitions lie one after another from 1 MiB (the gaps Windows leaves: ignored)."""
        offset = MIB
        for other in self.partitions:
            if other.number == partition.number:
                break
            offset += other.size
        return offset // BLOCK_SIZE

    def _write(self, first: int, count: int) -> None:
        if count > 0:
            self.writes.append(Write(first, count, next(_writes)))


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
