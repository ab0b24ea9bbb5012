"""Many nights, fast: the scenario step {"nights": {...}} (a light model of the restores).

Each night the instance's real backup runs (simulator/estate.py: shadow copies, the
snapshots and tags BackupDocument makes), and each drive's restore is written as the
workflow leaves it, without running the workflow: a consistent snapshot holding the drive
reverted to the backup's shadow copy, with its lineage tags and the workflow's description,
then the verdict on the source (status, consistent snapshot, checked-at, execution). The
stack's schedules fire on the virtual clock meanwhile, as deployed, each call judged by IAM
(the retention at noon, the reconciliation, the weekly re-verification, whose restores are
the real workflow); the hourly look for unverified instances is paused during the nights,
since the light model keeps no SSM history of the backups. The full workflow is the other
scenarios' (their restores, their late failures).

A held snapshot (`hold`) is being restored from the night it is made to the end of the
nights: a temporary volume made from it, as the workflow makes one, deleted when the nights
end. The run fails if it, or any declared snapshot that is not the backup's (`aws-vss`,
`crash`: not ours, whatever their tags), vanishes.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from simulator.scenario import ScenarioError
from vss_restore import tags
from vss_restore.aws.ec2 import CONSISTENT_DESCRIPTION

if TYPE_CHECKING:
    from simulator.runner import Simulation

# The hourly look (FindUnverifiedInstances) reads the backups' SSM command history, which
# the light model does not write: paused while the nights pass.
PAUSED_FUNCTIONS = ("FindUnverifiedInstancesFunction",)
# After the backup: its snapshots complete (snapshot_seconds), the restore creates, reverts
# and checks the volume; then its consistent snapshot completes and the verdict is written.
RESTORE_SECONDS = 1800
VERDICT_AFTER_SECONDS = 600
DAY = timedelta(days=1)


@dataclass
class NightsResult:
    """What the nights left: the report's `nights`."""

    instance: str
    count: int
    made: int = 0  # snapshots the nights made: backups and consistent snapshots
    kept: list[str] = field(default_factory=list)  # their aliases still there at the end
    deleted: list[str] = field(default_factory=list)  # their aliases gone
    # The most snapshots of ours one drive held at the end of any day (after its noon).
    max_snapshots_per_drive: int = 0
    # Each day: {"night": alias prefix, "date", "snapshots": {drive: n}, "deleted": so far}.
    days: list[dict[str, Any]] = field(default_factory=list)
    # Every snapshot the nights made, by alias: what an operator's listing would name.
    snapshot_ids: dict[str, str] = field(default_factory=dict)
    held: str = ""
    held_lost: bool = False
    not_ours_lost: list[str] = field(default_factory=list)


class Nights:
    """One `nights` step on a running simulation."""

    def __init__(self, simulation: "Simulation", spec: Mapping[str, Any]) -> None:
        self.simulation = simulation
        self.instance = str(spec["instance"])
        self.name = str(spec.get("name", "night"))
        self.hold = str(spec.get("hold", ""))
        self.result = NightsResult(self.instance, int(spec["count"]), held=self.hold)
        self.ec2 = simulation.ec2_client()
        self.instance_id = simulation.aliases.lookup("instance", self.instance)
        # alias -> (snapshot ID, drive): every snapshot of ours the run must account for.
        self.ours: dict[str, tuple[str, str]] = self._declared_backups()
        self.hold_volume = ""
        self._check_hold(simulation)

    def _check_hold(self, simulation: "Simulation") -> None:
        """The held snapshot is one the nights will make: NAMEk.VOLUME."""
        if not self.hold:
            return
        volumes = {v.alias for v in simulation.scenario.instances[self.instance].volumes}
        made = {
            f"{self.name}{night}.{volume}"
            for night in range(1, self.result.count + 1)
            for volume in volumes
        }
        if self.hold not in made:
            raise ScenarioError(
                f"nights: hold {self.hold!r} is none of the nights' snapshots "
                f"({self.name}1.{sorted(volumes)[0]} to {self.name}{self.result.count}...)"
            )

    def run(self) -> NightsResult:
        simulation = self.simulation
        not_ours = self._not_ours()
        paused = {s.name for s in simulation.stack.schedules if s.function in PAUSED_FUNCTIONS}
        simulation.paused_schedules |= paused
        try:
            first = _next_midnight(simulation.clock.now())
            for night in range(1, self.result.count + 1):
                moment = first + (night - 1) * DAY
                simulation.pass_time_to(moment, f"nights: waiting for night {night}")
                self._night(night)
                # The day's schedules (reconciliation, retention at noon) run before the count.
                simulation.pass_time_to(moment + DAY - timedelta(minutes=1), "nights: the day")
                self._count_day(night, moment)
        finally:
            simulation.paused_schedules -= paused
        self._account(not_ours)
        self._release_hold()
        return self.result

    # -- one night --------------------------------------------------------------------------
    def _night(self, night: int) -> None:
        simulation = self.simulation
        assert simulation.estate is not None
        alias = f"{self.name}{night}"
        with simulation.faults.suspended():
            # No completion events: the nightly rule would start the real workflow.
            made = simulation.estate.backup(self.instance, alias, None, "none", True)
        simulation.say(f"nights: night {night} backed up: {', '.join(made)}")
        for backup_alias, snapshot_id in made.items():
            self.ours[backup_alias] = (snapshot_id, backup_alias.rsplit(".", 1)[1])
        simulation.clock.sleep(RESTORE_SECONDS)
        with simulation.faults.suspended():
            consistent = {a: self._consistent_snapshot(a, s) for a, s in made.items()}
        simulation.clock.sleep(VERDICT_AFTER_SECONDS)
        with simulation.faults.suspended():
            for backup_alias, snapshot_id in made.items():
                self._verdict(snapshot_id, consistent[backup_alias], night)
                if backup_alias == self.hold:
                    self.hold_volume = self._temporary_volume(snapshot_id)

    def _consistent_snapshot(self, backup_alias: str, source: str) -> str:
        """As the workflow's snapshot step makes it: the drive reverted to the backup's own
        shadow copies, our tags with the source's lineage, our description."""
        world = self.simulation.world
        drive = backup_alias.rsplit(".", 1)[1]
        source_tags = tags.as_dict(
            self.ec2.describe_snapshots(SnapshotIds=[source])["Snapshots"][0].get("Tags")
        )
        lineage = {
            key: source_tags[key]
            for key in (tags.INSTANCE_ID, tags.DRIVE_LETTERS, tags.DEVICE, tags.SHADOW_SET_ID)
            if source_tags.get(key)
        }
        previous, world.snapshot_event_kind = world.snapshot_event_kind, ""
        try:
            snapshot_id: str = self.ec2.create_snapshot(
                VolumeId=self.simulation.aliases.lookup("volume", f"{self.instance}.{drive}"),
                Description=CONSISTENT_DESCRIPTION.format(source=source),
                TagSpecifications=[
                    {
                        "ResourceType": "snapshot",
                        "Tags": tags.as_list(
                            {
                                tags.RESOURCE: tags.CONSISTENT_SNAPSHOT,
                                tags.SOURCE_SNAPSHOT: source,
                                tags.EXECUTION: self._execution(backup_alias),
                                tags.BACKUP_TIME: _iso(world.snapshots[source].started_at),
                                **lineage,
                            }
                        ),
                    }
                ],
            )["SnapshotId"]
        finally:
            world.snapshot_event_kind = previous
        world.snapshot_contents[snapshot_id] = _reverted(world.snapshot_contents[source])
        self.ours[f"{backup_alias}.consistent"] = (snapshot_id, drive)
        return snapshot_id

    def _verdict(self, source: str, consistent: str, night: int) -> None:
        now = self.simulation.clock.now()
        self.ec2.create_tags(
            Resources=[source],
            Tags=tags.as_list(
                {
                    tags.STATUS: tags.VERIFIED,
                    tags.RESULT_SNAPSHOT: consistent,
                    tags.CHECKED_AT: _iso(now),
                    tags.EXECUTION: self._execution(f"{self.name}{night}"),
                }
            ),
        )

    def _execution(self, name: str) -> str:
        machine = next(iter(self.simulation.stack.state_machines.values()))
        return machine.replace(":stateMachine:", ":execution:") + ":" + name.replace(".", "-")

    def _temporary_volume(self, snapshot_id: str) -> str:
        """A restore of the held snapshot under way: the workflow's temporary volume."""
        found = self.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
        zone = self.ec2.describe_volumes(VolumeIds=[found["VolumeId"]])["Volumes"][0][
            "AvailabilityZone"
        ]
        volume_id: str = self.ec2.create_volume(
            SnapshotId=snapshot_id,
            AvailabilityZone=zone,
            TagSpecifications=[
                {
                    "ResourceType": "volume",
                    "Tags": tags.as_list(
                        {tags.RESOURCE: tags.TEMPORARY_VOLUME, tags.SOURCE_SNAPSHOT: snapshot_id}
                    ),
                }
            ],
        )["VolumeId"]
        self.simulation.say(f"nights: {self.hold} is being restored ({volume_id})")
        return volume_id

    # -- what stays -------------------------------------------------------------------------
    def _existing(self) -> set[str]:
        """The account's snapshots, from EC2's own state (the simulator's knowledge, read
        each day: a listing through the API would cost more than the night itself)."""
        assert self.simulation.estate is not None
        return set(self.simulation.estate.backend.snapshots)

    def _count_day(self, night: int, moment: datetime) -> None:
        existing = self._existing()
        per_drive: dict[str, int] = {}
        for snapshot_id, drive in self.ours.values():
            if snapshot_id in existing:
                per_drive[drive] = per_drive.get(drive, 0) + 1
        gone = sum(s not in existing for s, _ in self.ours.values())
        self.result.days.append(
            {
                "night": f"{self.name}{night}",
                "date": moment.date().isoformat(),
                "snapshots": dict(sorted(per_drive.items())),
                "deleted": gone,
            }
        )
        most = max(per_drive.values(), default=0)
        self.result.max_snapshots_per_drive = max(self.result.max_snapshots_per_drive, most)

    def _account(self, not_ours: dict[str, str]) -> None:
        existing = self._existing()
        made = [a for a in self.ours if a.startswith(self.name)]
        self.result.made = len(made)
        self.result.snapshot_ids = {a: self.ours[a][0] for a in made}
        self.result.kept = [a for a in made if self.ours[a][0] in existing]
        self.result.deleted = [a for a in made if self.ours[a][0] not in existing]
        if self.hold:
            held = self.simulation.aliases.snapshots.get(self.hold, "")
            self.result.held_lost = held not in existing
        self.result.not_ours_lost = sorted(a for a, s in not_ours.items() if s not in existing)

    def _release_hold(self) -> None:
        """The held restore ends: its temporary volume goes, as the workflow deletes it."""
        if self.hold_volume:
            with self.simulation.faults.suspended():
                self.ec2.delete_volume(VolumeId=self.hold_volume)

    def _declared_backups(self) -> dict[str, tuple[str, str]]:
        """The scenario's own backups of the instance (ready-made): ours, counted per drive."""
        found = {}
        for alias, spec in self.simulation.scenario.snapshots.items():
            instance, drive = spec.volume.split(".", 1)
            if spec.kind == "vss-backup" and instance == self.instance:
                found[alias] = (self.simulation.aliases.snapshots[alias], drive)
        return found

    def _not_ours(self) -> dict[str, str]:
        """The declared snapshots the backup did not make (AWS's VSS tooling's, crash copies
        however tagged): the retention must never delete them."""
        return {
            alias: self.simulation.aliases.snapshots[alias]
            for alias, spec in self.simulation.scenario.snapshots.items()
            if spec.kind != "vss-backup"
        }


def _reverted(source: Any) -> Any:
    """The backup's content reverted to its own shadow copies, as the workflow's revert
    leaves each drive before the consistent snapshot is taken."""
    content = source.clone()
    for partition in content.partitions:
        shadow = content.shadow(partition.backup_shadow_id) if partition.backup_shadow_id else None
        if shadow is not None:
            content.revert(shadow)
    content.shadow_copies = []
    return content


def _next_midnight(now: datetime) -> datetime:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == now else midnight + DAY


def _iso(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""
