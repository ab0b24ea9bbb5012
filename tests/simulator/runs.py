"""A finished scenario run: the report, and what the account and the world model show after."""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from simulator import Report, Simulation, load
from simulator.disks import DiskContent
from vss_restore import tags

SCENARIOS = Path(__file__).parents[2] / "simulator" / "scenarios"


@dataclass(frozen=True)
class OwnDisk:
    """One of an instance's own volumes, as Windows has it."""

    number: int
    online: bool
    read_only: bool
    content: DiskContent


@dataclass(frozen=True)
class Command:
    """A disk tool command the workflow sent, as Run Command's history lists it."""

    instance: str  # alias
    action: str
    snapshot: str  # alias of the snapshot the volume was restored from
    parameters: dict[str, str]
    started_at: datetime | None  # None: it never started
    ended_at: datetime | None
    acted_at: datetime | None = None  # when it took the helper's mutex (None: never)


@dataclass
class Run:
    report: Report
    snapshot_ids: dict[str, str]  # alias -> snap-...
    volume_ids: dict[str, str]  # the instances' own volumes: "helper.C" -> vol-...
    source_tags: dict[str, dict[str, str]]  # alias -> its tags after the run
    backup_shadows: dict[str, dict[str, str]]  # alias -> drive letter -> the backup's own
    shadows_inside: dict[str, list[str]]  # alias -> every shadow copy the snapshot holds
    own_disks_before: dict[str, OwnDisk]  # "helper.C" -> ...
    own_disks_after: dict[str, OwnDisk]
    rewritten: dict[str, list[str]]  # instance alias -> volumes Windows gave a new identity
    commands: list[Command]
    peak_commands: dict[str, int]  # instance alias -> the most commands it ran at once
    disks_after: dict[str, list[str]]  # instance alias -> the volumes Windows sees, by number
    restored_volumes: list[str]  # every volume the workflow made, deleted or not
    consistent_tags: dict[str, dict[str, str]]  # source alias -> its consistent snapshot's tags

    def actions(self, snapshot: str) -> list[str]:
        return [c.action for c in self.commands if c.snapshot == snapshot]

    def execution_of(self, snapshot: str) -> Any:
        """The execution whose verdict tags the snapshot carries."""
        arn = self.source_tags[snapshot][tags.EXECUTION]
        return next(e for e in self.report.executions if arn.endswith(":" + e.name))


def _own_disks(simulation: Simulation) -> dict[str, OwnDisk]:
    world, aliases = simulation.world, simulation.aliases
    disks = {}
    for alias, volume_id in aliases.volumes.items():
        host = world.hosts[aliases.instances[alias.split(".", 1)[0]]]
        disk = host.disk_of(volume_id)
        assert disk is not None
        content = world.content_of_volume(volume_id).clone()
        disks[alias] = OwnDisk(disk.number, disk.online, disk.read_only, content)
    return disks


def finished_run(source: Path | dict[str, Any]) -> Run:
    with Simulation(load(source)) as simulation:
        before = _own_disks(simulation)
        report = simulation.run()
        world, aliases = simulation.world, simulation.aliases
        found = simulation.ec2_client().describe_snapshots(
            SnapshotIds=list(aliases.snapshots.values())
        )["Snapshots"]
        by_id = {s["SnapshotId"]: tags.as_dict(s.get("Tags")) for s in found}
        made = {s.alias: s.consistent_snapshot for s in report.snapshots if s.consistent_snapshot}
        consistent = (
            simulation.ec2_client().describe_snapshots(SnapshotIds=list(made.values()))["Snapshots"]
            if made
            else []
        )
        consistent_by_id = {s["SnapshotId"]: tags.as_dict(s.get("Tags")) for s in consistent}
        instance_alias = {i: a for a, i in aliases.instances.items()}
        return Run(
            report=report,
            snapshot_ids=dict(aliases.snapshots),
            volume_ids=dict(aliases.volumes),
            source_tags={alias: by_id[i] for alias, i in aliases.snapshots.items()},
            backup_shadows={a: dict(s) for a, s in aliases.shadows.items()},
            shadows_inside={
                alias: [s.id for s in world.snapshot_contents[i].shadow_copies]
                for alias, i in aliases.snapshots.items()
            },
            own_disks_before=before,
            own_disks_after=_own_disks(simulation),
            rewritten={instance_alias[i]: list(host.rewritten) for i, host in world.hosts.items()},
            commands=[
                Command(
                    instance_alias[i.instance_id],
                    i.parameters.get("Action", ""),
                    aliases.snapshot_alias(
                        world.volume_sources.get(i.parameters.get("VolumeId", ""), "")
                    )
                    or "",
                    dict(i.parameters),
                    i.started_at,
                    i.ended_at(),
                    i.acquired_at,
                )
                for i in simulation.agents.log
                if i.document.is_disk_tool
            ],
            peak_commands={
                alias: simulation.agents.peak_running(i) for alias, i in aliases.instances.items()
            },
            disks_after={
                instance_alias[i]: [d.volume_id for _, d in sorted(host.disks.items())]
                for i, host in world.hosts.items()
            },
            restored_volumes=[v for v in world.volume_sources if v not in aliases.volumes.values()],
            consistent_tags={alias: consistent_by_id[i] for alias, i in made.items()},
        )


def failures(report: Report) -> str:
    return "\n".join(report.failures) + "\n" + report.table()
