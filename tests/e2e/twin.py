"""The simulator standing in for the account in the e2e kit: the kit's Stage and Windows.

Everything the kit does through boto3 (waiting for the verdicts on the backup's snapshots,
volumes of the consistent and of the source snapshot attached to the helper, the teardown
and the final search for leftovers) runs unchanged against the simulated account. What
stands in here, and only a real account exercises:
- the stacks: the simulator deploys template.yaml itself when the Simulation starts (no
  sam deploy, no CloudFormation stack), and the fixture is the scenario's two instances,
  not e2e/fixture.yaml (its resources are checked separately on moto's CloudFormation);
- Windows: no PowerShell runs. The files are the simulator's content model (a partition's
  name -> SHA-256), the backup is the simulator's model of BackupDocument (Estate.backup,
  not a Run Command), and the late writer is a watcher the simulated machine calls when a
  shadow copy of its volume is made, as e2e/scripts/late-writer.ps1 polls Win32_ShadowCopy.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from e2e.account import KIT_TAG, Account, Clock, KitFailed
from e2e.kit import Files, Fixture, Kit, Say, Service, sha256
from simulator import Simulation, load
from simulator.disks import Partition, ShadowCopy

DRIVE = "D"


def scenario(run_id: str, faults: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What the fixture stack holds: a VSS-tagged source with a data drive D:, a helper."""
    ours = {KIT_TAG: run_id}
    return {
        "name": "e2e-twin",
        "start": "2026-11-25T08:00:00Z",
        "parameters": {"HelperMode": "named", "HelperInstanceIds": "${instance:helper}"},
        "instances": {
            "source": {
                "tags": {**ours, "ConsistentSnapshot": "WindowsVSS"},
                "volumes": [
                    {"alias": "C", "size": 30, "drive_letters": ["C"], "system": True},
                    {"alias": DRIVE, "device": "xvdf", "size": 8, "drive_letters": [DRIVE]},
                ],
            },
            "helper": {"helper": True, "tags": ours},
        },
        "steps": [],
        "faults": faults or [],
    }


class SimulatedStage:
    """The stacks: the Simulation's own deployment and the scenario's instances."""

    def __init__(self, simulation: Simulation, account: Account) -> None:
        self.simulation = simulation
        self.account = account
        self.removed: list[str] = []

    def deploy_service(self) -> Service:
        stack = self.simulation.stack
        return Service(
            stack_name="(the simulated deployment)",
            backup_document=stack.documents["BackupDocument"],
            backup_policy_arn=stack.names.get("BackupInstancePolicy", ""),
        )

    def deploy_fixture(self, service: Service) -> Fixture:
        aliases = self.simulation.aliases
        return Fixture(
            stack_name="(the scenario's instances)",
            source_instance_id=aliases.instances["source"],
            data_volume_id=aliases.volumes[f"source.{DRIVE}"],
            data_drive=DRIVE,
            helper_instance_id=aliases.instances["helper"],
        )

    def name_helper(self, service: Service, fixture: Fixture) -> None:
        """The scenario names the helper in HelperInstanceIds from the start."""

    def remove_fixture(self) -> None:
        """What deleting the fixture stack does: the data volume, then the instances, whose
        termination takes their root volumes (DeleteOnTermination). A running instance's
        root cannot be detached (EC2 API Reference, DetachVolume; the simulator refuses it)."""
        aliases = self.simulation.aliases
        instances = [aliases.instances["source"], aliases.instances["helper"]]
        found = self.account.ec2.describe_instances(InstanceIds=instances)["Reservations"]
        roots = {(i["InstanceId"], i["RootDeviceName"]) for r in found for i in r["Instances"]}
        attached = self.account.ec2.describe_volumes(
            Filters=[{"Name": "attachment.instance-id", "Values": instances}]
        )["Volumes"]
        for volume in attached:
            if any((a["InstanceId"], a["Device"]) in roots for a in volume["Attachments"]):
                continue
            self.account.detach_and_delete(volume["VolumeId"])
        self.account.ec2.terminate_instances(InstanceIds=instances)
        self.removed.append("fixture")

    def remove_service(self) -> None:
        """The simulated deployment ends with the Simulation."""
        self.removed.append("service")

    def stack_names(self) -> list[str]:
        return []  # no CloudFormation stack here: only a real account's are checked


class SimulatedWindows:
    """The simulated Windows machines' content model in place of the kit's PowerShell."""

    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation
        self.world = simulation.world
        self.shadow_time: dict[str, dict[str, str]] = {}

    def _partition(self, instance_id: str, drive: str) -> tuple[str, Partition]:
        host = self.world.hosts[instance_id]
        for disk in host.disks.values():
            content = self.world.content_of_volume(disk.volume_id)
            for partition in content.partitions:
                if partition.drive_letter == drive:
                    return disk.volume_id, partition
        raise KitFailed(f"{instance_id} has no drive {drive}:")

    def write_files(self, instance_id: str, drive: str, files: Files) -> None:
        _, partition = self._partition(instance_id, drive)
        partition.files.update({name: sha256(data) for name, data in files.items()})

    def start_late_writer(self, instance_id: str, drive: str, files: Files) -> None:
        volume_id, partition = self._partition(instance_id, drive)
        host = self.world.hosts[instance_id]

        def on_shadow_copy(of_volume: str, shadow: ShadowCopy) -> None:
            if of_volume != volume_id or shadow.partition != partition.number:
                return
            host.shadow_copy_watchers.remove(on_shadow_copy)
            partition.files.update({name: sha256(data) for name, data in files.items()})
            self.shadow_time[instance_id] = dict(shadow.files)

        host.shadow_copy_watchers.append(on_shadow_copy)

    def run_backup(self, instance_id: str, document: str) -> list[str]:
        assert document == self.simulation.stack.documents["BackupDocument"]
        alias = next(a for a, i in self.simulation.aliases.instances.items() if i == instance_id)
        assert self.simulation.estate is not None
        with self.simulation.faults.suspended():
            made = self.simulation.estate.backup(alias, None, None, "single", True)
        return list(made.values())

    def shadow_time_files(self, instance_id: str) -> dict[str, str]:
        if instance_id not in self.shadow_time:
            raise KitFailed(f"the late writer on {instance_id} saw no shadow copy")
        return self.shadow_time[instance_id]

    def files_on(self, helper_id: str, volume_id: str) -> dict[str, str]:
        host = self.world.hosts[helper_id]
        clock = self.simulation.clock
        for _ in range(60):  # the disk arrives in Windows a little after the attachment
            self.world.settle()
            if host.disk_of(volume_id) is not None:
                break
            clock.sleep(1)
        else:
            raise KitFailed(f"{volume_id} never appeared as a disk on {helper_id}")
        files: dict[str, str] = {}
        for partition in self.world.content_of_volume(volume_id).partitions:
            files.update(partition.files)
        return files


@contextmanager
def simulated_kit(
    run_id: str, say: Say, faults: list[dict[str, Any]] | None = None
) -> Iterator[tuple[Kit, Simulation]]:
    """The kit over the simulated account, its clock the simulator's: run it inside."""
    with Simulation(load(scenario(run_id, faults))) as simulation:
        clock = simulation.clock
        account = Account(
            simulation.world.region, clock=Clock(sleep=clock.sleep, monotonic=clock.elapsed)
        )
        kit = Kit(
            account,
            SimulatedStage(simulation, account),
            SimulatedWindows(simulation),
            run_id,
            say=say,
        )
        with simulation.operate("e2e kit"):
            yield kit, simulation
