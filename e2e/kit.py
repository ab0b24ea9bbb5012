"""The kit's steps, in order, over an Account (boto3), a Stage (the stacks) and Windows (the
instances). Only Stage and Windows differ between AWS (e2e/aws.py) and the simulator's twin
(tests/e2e/twin.py); everything else here runs in both."""

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from botocore.exceptions import ClientError, WaiterError

from e2e.account import KIT_TAG, Account, KitFailed
from vss_restore import tags

# The folder the kit writes on the source's data drive and reads on the restored volumes.
FOLDER = "vss-restore-e2e"
# Where the helper sees the volumes the kit reads: out of the workflow's usual xvdf-xvdz
# first picks (it takes the first free one), and one at a time.
CHECK_DEVICE = "xvdz"
VERDICT_TIMEOUT = 2 * 3600.0
VERDICT_EVERY = 30.0

Files = Mapping[str, bytes]
Say = Callable[[str], None]


@dataclass(frozen=True)
class Service:
    """The vss-restore stack, as the kit uses it."""

    stack_name: str
    backup_document: str
    backup_policy_arn: str


@dataclass(frozen=True)
class Fixture:
    """The fixture stack's instances: the backed-up source and the helper."""

    stack_name: str
    source_instance_id: str
    data_volume_id: str
    data_drive: str
    helper_instance_id: str


class Stage(Protocol):
    """Where the two stacks come from and go."""

    def deploy_service(self) -> Service: ...

    def deploy_fixture(self, service: Service) -> Fixture: ...

    def name_helper(self, service: Service, fixture: Fixture) -> None: ...

    def remove_fixture(self) -> None: ...

    def remove_service(self) -> None: ...

    def stack_names(self) -> list[str]: ...


class Windows(Protocol):
    """What happens inside the Windows instances."""

    def write_files(self, instance_id: str, drive: str, files: Files) -> None:
        """Write the files into the drive's kit folder, flushed to the disk."""

    def start_late_writer(self, instance_id: str, drive: str, files: Files) -> None:
        """From now on: when a shadow copy of the drive appears, write `files` at once (so
        that the EBS snapshot taken after it holds them), and read back the files the shadow
        copy holds."""

    def run_backup(self, instance_id: str, document: str) -> list[str]:
        """Run the stack's BackupDocument on the instance; the snapshots it made."""

    def shadow_time_files(self, instance_id: str) -> dict[str, str]:
        """What the late writer read in the backup's shadow copy: name -> SHA-256."""

    def files_on(self, helper_id: str, volume_id: str) -> dict[str, str]:
        """The kit folder's files on a volume attached to the helper: name -> SHA-256."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def known_files(run_id: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """What the kit writes before the backup, and what it writes after the shadow copy: one
    file changed, one added, so that a crash copy differs from the shadow copy both ways."""
    before = {
        f"before-{n}.txt": f"vss-restore e2e {run_id}: written before the backup ({n})\r\n".encode()
        for n in range(1, 4)
    }
    before["changed.txt"] = f"vss-restore e2e {run_id}: as the shadow copy holds it\r\n".encode()
    after = {
        "changed.txt": f"vss-restore e2e {run_id}: rewritten after the shadow copy\r\n".encode(),
        "after-1.txt": f"vss-restore e2e {run_id}: written after the shadow copy\r\n".encode(),
    }
    return before, after


def differences(expected: Mapping[str, str], found: Mapping[str, str]) -> list[str]:
    """Each way the files found differ from those expected, one line each."""
    lines = [f"{name}: missing" for name in sorted(set(expected) - set(found))]
    lines += [f"{name}: not expected" for name in sorted(set(found) - set(expected))]
    lines += [
        f"{name}: sha256 {found[name][:12]}… instead of {expected[name][:12]}…"
        for name in sorted(set(expected) & set(found))
        if expected[name].lower() != found[name].lower()
    ]
    return lines


@dataclass
class Outcome:
    """What a run proved, and what it left."""

    proven: list[str] = field(default_factory=list)
    failure: str = ""
    teardown_problems: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failure or self.teardown_problems or self.left)


@dataclass
class Kit:
    """One run: deploy, write, back up, wait for the verdict, prove, then always tear down."""

    account: Account
    stage: Stage
    windows: Windows
    run_id: str
    say: Say = print
    service: Service | None = None
    fixture: Fixture | None = None
    backup_snapshots: list[str] = field(default_factory=list)
    consistent_snapshots: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def run(self) -> Outcome:
        outcome = Outcome()
        try:
            self._prove(outcome)
        except (KitFailed, ClientError, WaiterError) as exc:
            outcome.failure = str(exc)
            self.say(f"FAILED: {exc}")
        finally:
            self._tear_down(outcome)
            outcome.left = leftovers(
                self.account,
                self.run_id,
                self.fixture.source_instance_id if self.fixture else "",
                [*self.backup_snapshots, *self.consistent_snapshots],
                self.stage.stack_names(),
            )
            for line in outcome.left:
                self.say(f"LEFT BEHIND: {line}")
            if not outcome.left:
                self.say("nothing of this run is left (instances, volumes, snapshots, stacks)")
        return outcome

    # -- the proof ------------------------------------------------------------------------
    def _prove(self, outcome: Outcome) -> None:
        self.say("deploying the vss-restore stack")
        self.service = service = self.stage.deploy_service()
        self.say("deploying the fixture stack (a VSS-tagged Windows source, a helper)")
        self.fixture = fixture = self.stage.deploy_fixture(service)
        self.stage.name_helper(service, fixture)
        source, drive = fixture.source_instance_id, fixture.data_drive
        before, after = known_files(self.run_id)

        self.say(f"writing {len(before)} files on {source} {drive}:\\{FOLDER}")
        self.windows.write_files(source, drive, before)
        self.windows.start_late_writer(source, drive, after)
        self.say(f"running {service.backup_document} on {source}")
        self.backup_snapshots = self.windows.run_backup(source, service.backup_document)
        data_snapshot = self._snapshot_of(fixture.data_volume_id)
        self.say(f"backup made {', '.join(self.backup_snapshots)}; {drive}: is {data_snapshot}")

        shadow = self.windows.shadow_time_files(source)
        written = {name: sha256(data) for name, data in before.items()}
        wrong = differences(written, shadow)
        if wrong:
            raise KitFailed(
                "the backup's shadow copy does not hold the files written before it: "
                + "; ".join(wrong)
            )
        outcome.proven.append(
            f"the backup's shadow copy of {drive}: holds exactly the {len(shadow)} files "
            "written before it (read through the shadow copy itself)"
        )

        verdicts = self._wait_for_verdicts()
        verdict = verdicts[data_snapshot]
        if verdict.get(tags.STATUS) != tags.VERIFIED:
            raise KitFailed(
                f"{data_snapshot}: verdict {verdict.get(tags.STATUS)}: {verdict.get(tags.REASON)}"
            )
        consistent = verdict[tags.RESULT_SNAPSHOT]
        outcome.proven.append(f"{data_snapshot} verified; consistent snapshot {consistent}")

        held = self._files_in(consistent, "consistent snapshot")
        wrong = differences(shadow, held)
        if wrong:
            raise KitFailed(
                f"the consistent snapshot {consistent} does not hold the shadow-copy-time "
                "files: " + "; ".join(wrong)
            )
        outcome.proven.append(
            f"the consistent snapshot {consistent} holds exactly the shadow-copy-time files "
            f"({len(held)}, same names, same SHA-256)"
        )
        crash = self._files_in(data_snapshot, "crash-consistent source snapshot")
        if not differences(shadow, crash):
            raise KitFailed(
                f"inconclusive: the EBS snapshot {data_snapshot} holds no write made after the "
                "shadow copy (the late writes missed the moment of the snapshot), so its "
                "consistent snapshot proves nothing: run the kit again"
            )
        outcome.proven.append(
            f"the EBS snapshot {data_snapshot} itself differs from the shadow copy "
            f"({'; '.join(differences(shadow, crash))}): the revert is what made it right"
        )
        for line in outcome.proven:
            self.say(f"PROVEN: {line}")

    def _snapshot_of(self, volume_id: str) -> str:
        found = self.account.ec2.describe_snapshots(SnapshotIds=self.backup_snapshots)
        of_volume = [s["SnapshotId"] for s in found["Snapshots"] if s["VolumeId"] == volume_id]
        if len(of_volume) != 1:
            raise KitFailed(
                f"the backup made {len(of_volume)} snapshots of the data volume {volume_id}"
            )
        return str(of_volume[0])

    def _wait_for_verdicts(self) -> dict[str, dict[str, str]]:
        """Every backup snapshot's verdict (the teardown must not race a running restore)."""
        verdicts: dict[str, dict[str, str]] = {}

        def all_judged() -> bool:
            for snapshot_id in self.backup_snapshots:
                if snapshot_id in verdicts:
                    continue
                found = self.account.snapshot_tags(snapshot_id)
                if found.get(tags.STATUS) in (tags.VERIFIED, tags.FAILED):
                    verdicts[snapshot_id] = found
                    consistent = found.get(tags.RESULT_SNAPSHOT, "")
                    if consistent.startswith("snap-"):
                        self.consistent_snapshots.append(consistent)
                    self.say(f"verdict on {snapshot_id}: {found.get(tags.STATUS)}")
            return len(verdicts) == len(self.backup_snapshots)

        self.say("waiting for the restores' verdicts (tags on the backup's snapshots)")
        self.account.wait_for(
            "the verdicts", all_judged, timeout=VERDICT_TIMEOUT, every=VERDICT_EVERY
        )
        return verdicts

    def _files_in(self, snapshot_id: str, what: str) -> dict[str, str]:
        """A volume of the snapshot, on the helper, read, gone again."""
        assert self.fixture is not None
        helper = self.fixture.helper_instance_id
        zone = self.account.instance_zone(helper)
        volume_id = self.account.volume_from(snapshot_id, zone, self.run_id, what)
        self.volumes.append(volume_id)
        try:
            self.account.attach(volume_id, helper, CHECK_DEVICE)
            files = self.windows.files_on(helper, volume_id)
            self.say(f"{what} {snapshot_id}: {len(files)} files in {FOLDER}")
            return files
        finally:
            self.account.detach_and_delete(volume_id)
            self.volumes.remove(volume_id)

    # -- the teardown ---------------------------------------------------------------------
    def _tear_down(self, outcome: Outcome) -> None:
        """Everything the run made, whatever happened; each part tried even if one fails."""
        self.say("tearing down")
        parts: list[tuple[str, Callable[[], None]]] = [
            *((f"volume {v}", lambda v=v: self.account.detach_and_delete(v)) for v in self.volumes),
            ("snapshots", self._delete_snapshots),
            ("the fixture stack", self.stage.remove_fixture),
            ("the vss-restore stack", self.stage.remove_service),
        ]
        for what, remove in parts:
            try:
                remove()
            except (KitFailed, ClientError, WaiterError) as exc:
                outcome.teardown_problems.append(f"{what}: {exc}")
                self.say(f"teardown of {what} failed: {exc}")

    def _delete_snapshots(self) -> None:
        source = self.fixture.source_instance_id if self.fixture else ""
        found = our_snapshots(self.account, self.run_id, source, self.backup_snapshots)
        for snapshot_id in sorted({*found, *self.consistent_snapshots}):
            try:
                self.account.ec2.delete_snapshot(SnapshotId=snapshot_id)
            except ClientError as exc:
                if "NotFound" not in str(exc):
                    raise


def our_snapshots(
    account: Account, run_id: str, source_instance_id: str, backup_snapshots: list[str]
) -> list[str]:
    """The run's snapshots: the backup's (tagged with the source instance), the workflow's
    consistent snapshots of them, and any the kit tagged itself."""
    ec2 = account.ec2
    queries = [[{"Name": f"tag:{KIT_TAG}", "Values": [run_id]}]]
    if source_instance_id:
        queries.append([{"Name": f"tag:{tags.INSTANCE_ID}", "Values": [source_instance_id]}])
    found: set[str] = set()
    for filters in queries:
        snapshots = ec2.describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"]
        found.update(s["SnapshotId"] for s in snapshots)
    sources = sorted({*backup_snapshots, *found})
    if sources:
        made = ec2.describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": f"tag:{tags.SOURCE_SNAPSHOT}", "Values": sources}]
        )["Snapshots"]
        found.update(s["SnapshotId"] for s in made)
    return sorted(found)


def leftovers(
    account: Account,
    run_id: str,
    source_instance_id: str,
    known_snapshots: list[str],
    stack_names: list[str],
) -> list[str]:
    """Whatever of the run still exists: instances, volumes, snapshots, stacks."""
    ec2 = account.ec2
    left: list[str] = []
    reservations = ec2.describe_instances(Filters=[{"Name": f"tag:{KIT_TAG}", "Values": [run_id]}])[
        "Reservations"
    ]
    left += [
        f"instance {i['InstanceId']} ({i['State']['Name']})"
        for r in reservations
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    snapshots = our_snapshots(account, run_id, source_instance_id, [])
    existing = set(snapshots)
    for snapshot_id in known_snapshots:
        try:
            ec2.describe_snapshots(SnapshotIds=[snapshot_id])
            existing.add(snapshot_id)
        except ClientError as exc:
            if "NotFound" not in str(exc):
                raise
    left += [f"snapshot {s}" for s in sorted(existing)]
    volume_filters = [[{"Name": f"tag:{KIT_TAG}", "Values": [run_id]}]]
    if existing or known_snapshots:
        ids = sorted({*existing, *known_snapshots})
        volume_filters.append([{"Name": "snapshot-id", "Values": ids}])
    volumes: set[str] = set()
    for filters in volume_filters:
        volumes.update(v["VolumeId"] for v in ec2.describe_volumes(Filters=filters)["Volumes"])
    left += [f"volume {v}" for v in sorted(volumes)]
    left += [f"stack {name}" for name in stack_names if account.stack_exists(name)]
    return left
