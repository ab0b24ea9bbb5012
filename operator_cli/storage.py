"""What the kept snapshots cost: per instance, the snapshots kept, their size, and an estimate
of the monthly storage.

EBS bills a snapshot by the data it stores, not by its volume's size, and DescribeSnapshots
does not say how much that is. The estimate follows how EBS stores snapshots (EBS User
Guide, "How Amazon EBS snapshots work"): the first snapshot of a chain is full (at most its
volume's size), each later one holds only the blocks changed since. A drive's backups form
one chain; its consistent snapshots are incremental relative to their source, unless they
are encrypted with another key than the source (encryption by default on an unencrypted
source): then they form a second chain, a second full copy. So: one volume size per chain,
an upper bound for the full copies and a lower bound for the whole (the changes between
snapshots come on top; `report --storage` measures them with EBS direct APIs'
ListChangedBlocks: operator_cli/changed.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from operator_cli.account import Account
from vss_restore import tags

# Amazon EBS pricing, snapshots, Standard tier, US East (N. Virginia): $0.05 per GB-month
# (https://aws.amazon.com/ebs/pricing/, as of December 2026). Other Regions cost more.
PRICE_PER_GB_MONTH = 0.05
PRICE_SOURCE = "EBS snapshot Standard tier, us-east-1, $0.05/GB-month (aws.amazon.com/ebs/pricing)"


@dataclass(frozen=True)
class InstanceStorage:
    instance_id: str
    drives: int
    backups: int  # the nightly backup's snapshots kept
    consistent: int  # our consistent snapshots kept
    provisioned_gib: int  # the sum of the kept snapshots' volume sizes
    chains: int  # full copies EBS stores at most once each (see the module's note)
    estimated_gib: int  # one volume size per chain
    estimated_monthly_usd: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def listed(account: Account) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Our snapshots, every age (two filtered listings, never the whole account): the
    backup's (those naming their instance) and our consistent ones."""
    settings = account.settings
    backups = _listed(account, settings.vss_tag_key, settings.vss_tag_value)
    consistent = _listed(account, tags.RESOURCE, tags.CONSISTENT_SNAPSHOT)
    return [s for s in backups if tags.as_dict(s.get("Tags")).get(tags.INSTANCE_ID)], consistent


def _listed(account: Account, key: str, value: str) -> list[dict[str, Any]]:
    pages = account.ec2.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], Filters=[{"Name": f"tag:{key}", "Values": [value]}]
    )
    return [dict(snapshot) for page in pages for snapshot in page["Snapshots"]]


@dataclass
class _Drive:
    backups: list[dict[str, Any]] = field(default_factory=list)
    consistent: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0

    @property
    def chains(self) -> int:
        """Full copies of the drive EBS stores: the backups' chain, and the consistent ones'
        when they are not incremental relative to their source (another key, no source)."""
        keys = {s.get("KmsKeyId") or "" for s in self.backups}
        separate = any(
            not self.backups or (s.get("KmsKeyId") or "") not in keys for s in self.consistent
        )
        return (1 if self.backups else 0) + (1 if separate else 0)

    @property
    def provisioned(self) -> int:
        return sum(int(s.get("VolumeSize") or 0) for s in [*self.backups, *self.consistent])


def summarize(
    backups: Iterable[dict[str, Any]], consistent: Iterable[dict[str, Any]]
) -> list[InstanceStorage]:
    drives: dict[tuple[str, str], _Drive] = {}
    for is_backup, snapshots in ((True, backups), (False, consistent)):
        for snapshot in snapshots:
            found = tags.as_dict(snapshot.get("Tags"))
            drive = drives.setdefault(
                (found.get(tags.INSTANCE_ID, ""), found.get(tags.DEVICE, "")), _Drive()
            )
            (drive.backups if is_backup else drive.consistent).append(snapshot)
            drive.size = max(drive.size, int(snapshot.get("VolumeSize") or 0))
    per_instance: dict[str, list[_Drive]] = {}
    for (instance_id, _), drive in drives.items():
        per_instance.setdefault(instance_id, []).append(drive)
    rows = []
    for instance_id, found_drives in sorted(per_instance.items()):
        estimated = sum(d.chains * d.size for d in found_drives)
        rows.append(
            InstanceStorage(
                instance_id=instance_id,
                drives=len(found_drives),
                backups=sum(len(d.backups) for d in found_drives),
                consistent=sum(len(d.consistent) for d in found_drives),
                provisioned_gib=sum(d.provisioned for d in found_drives),
                chains=sum(d.chains for d in found_drives),
                estimated_gib=estimated,
                estimated_monthly_usd=round(estimated * PRICE_PER_GB_MONTH, 2),
            )
        )
    return rows


def total_monthly(rows: Iterable[InstanceStorage]) -> float:
    return round(sum(r.estimated_monthly_usd for r in rows), 2)
