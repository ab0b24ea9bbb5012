"""The scenario's instances and snapshots, and the nightly VSS backup that makes snapshots."""

import contextlib
import itertools
import random
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.ec2.models import ec2_backends
from moto.kms.models import kms_backends

from simulator import backup_retry
from simulator.aliases import Aliases
from simulator.disks import DiskContent, ShadowCopy, new_identity, windows_disk
from simulator.ec2 import multi_volume_event
from simulator.scenario import InstanceSpec, SnapshotSpec, VolumeSpec
from simulator.windows import WindowsHost
from simulator.world import ManagedInstance, World, seconds
from vss_restore import tags as vss_tags

if TYPE_CHECKING:
    from simulator.iam.enforce import Authorizer

_IDENTITY_SEEDS = uuid.UUID("0f7c2d9e-4b1a-4e3f-8c5d-6a7b8c9d0e1f")
HELPER_TAG_VALUE = "true"
# The managed policy the backed-up instances' role carries (template.yaml): the backup's
# calls are judged against it.
INSTANCE_POLICY = "BackupInstancePolicy"
# Who the backup's calls are when the instance's role lacks BackupInstancePolicy: nobody
# with a permission.
WITHOUT_BACKUP_POLICY = "an instance role without BackupInstancePolicy"
_EC2_TRUST = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",'
    ' "Principal": {"Service": "ec2.amazonaws.com"}}]}'
)
FAR_FUTURE_SECONDS = 10 * 365 * 86400
# moto runs instances from any image ID when it loads no images of its own.
WINDOWS_SERVER_AMI = "ami-0c2b0d3fb02824d92"

# The module documents/backup.ps1 imports (it stops when it is not installed).
BACKUP_MODULE = "AWS.Tools.EC2"
# The backup's document (template.yaml): a scenario's fault with this "function" hits the
# calls the backup makes on the instance.
BACKUP_DOCUMENT = "BackupDocument"


@dataclass(frozen=True)
class VssMarker:
    """The tag the nightly backup puts on its snapshots (template parameters VssTag*)."""

    key: str
    value: str


class Estate:
    """Creates what the scenario declares and runs the backups it asks for."""

    def __init__(self, world: World, aliases: Aliases, marker: VssMarker) -> None:
        self.world = world
        self.aliases = aliases
        self.marker = marker
        # Any: the tag specifications are built from the scenario, not literal TypedDicts.
        self.ec2: Any = boto3.client(
            "ec2",
            region_name=world.region,
            # The backup's calls retry as AWS.Tools.EC2 does (backup_retry.SDK_ATTEMPTS).
            config=Config(
                retries={"mode": "legacy", "total_max_attempts": backup_retry.SDK_ATTEMPTS}
            ),
        )
        self.retry = backup_retry.settings()
        self.rng = random.Random(aliases.seed)
        self.specs: dict[str, InstanceSpec] = {}
        self.backups = 0
        # Set once the stack is deployed: the backup then calls as the instance's role does.
        self.authorizer: Authorizer | None = None
        self.backup_log_group = ""
        self._customer_key = ""
        # Each backup's summary as BackupDocument prints it: what it could not back up.
        self.backup_summaries: list[dict[str, Any]] = []
        self.backup_policy_arn = ""  # the stack's BackupInstancePolicy, once deployed
        self._iam_client: Any = None
        # During one backup run: each instance's role policies, read once (IAM's state does
        # not change within a run; between runs a test may detach the policy).
        self._policies_memo: dict[str, set[str]] | None = None

    @contextlib.contextmanager
    def _on_the_instance(self, instance_id: str) -> Iterator[None]:
        """The backup's calls are made with the instance's role: BackupInstancePolicy's
        statements when the role attaches the stack's policy, none (every call refused, as
        EC2 refuses a role without it) when it does not."""
        if self.authorizer is None or INSTANCE_POLICY not in self.authorizer.principals:
            yield
            return
        holds = self.backup_policy_arn in self._policies(instance_id)
        with self.authorizer.acting(INSTANCE_POLICY if holds else WITHOUT_BACKUP_POLICY):
            yield

    def _policies(self, instance_id: str) -> set[str]:
        if self._policies_memo is None:
            return self.role_policies(instance_id)
        if instance_id not in self._policies_memo:
            self._policies_memo[instance_id] = self.role_policies(instance_id)
        return self._policies_memo[instance_id]

    def role_policies(self, instance_id: str) -> set[str]:
        """The managed policies the role of the instance's profile attaches (IAM's state)."""
        found = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        profile = found[0]["Instances"][0].get("IamInstanceProfile", {}).get("Arn", "")
        if not profile:
            return set()
        name = profile.rsplit("/", 1)[-1]
        iam = self._iam()
        roles = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]
        return {
            policy["PolicyArn"]
            for role in roles
            for policy in iam.list_attached_role_policies(RoleName=role["RoleName"])[
                "AttachedPolicies"
            ]
        }

    def _iam(self) -> Any:
        """One IAM client for every backup (a client takes long to make; nights make many)."""
        if self._iam_client is None:
            self._iam_client = boto3.client("iam", region_name=self.world.region)
        return self._iam_client

    def attach_backup_policy(self, policy_arn: str) -> None:
        """The operator's set-up (docs/backup.md): each instance's role attaches
        the stack's BackupInstancePolicyArn output (scenarios back up, or make ready-made
        snapshots of, helpers too). A test detaches it to see a backup refused."""
        self.backup_policy_arn = policy_arn
        iam: Any = boto3.client("iam", region_name=self.world.region)
        for alias in self.specs:
            iam.attach_role_policy(RoleName=_role_name(alias), PolicyArn=policy_arn)

    def _instance_profile(self, alias: str) -> str:
        """The instance's own role and profile (its policies are attached after the deploy)."""
        iam: Any = boto3.client("iam", region_name=self.world.region)
        name = _role_name(alias)
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=_EC2_TRUST)
        iam.create_instance_profile(InstanceProfileName=name)
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
        return name

    @property
    def backend(self) -> Any:
        return ec2_backends[self.world.account_id][self.world.region]

    # -- instances ------------------------------------------------------------------------
    def create_instance(self, spec: InstanceSpec) -> str:
        image_id = WINDOWS_SERVER_AMI
        instance_tags = {"Name": spec.alias, **spec.tags}
        if spec.helper:
            instance_tags[vss_tags.HELPER] = HELPER_TAG_VALUE
        created = self.ec2.run_instances(
            ImageId=image_id,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.large",
            IamInstanceProfile={"Name": self._instance_profile(spec.alias)},
            # What docs/backup.md asks of a backed-up instance, and what AWS's Windows AMIs
            # launch with.
            MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
            Placement={"AvailabilityZone": spec.availability_zone},
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": vss_tags.as_list(instance_tags)}
            ],
        )
        instance_id: str = created["Instances"][0]["InstanceId"]
        instance = self.backend.get_instance(instance_id)
        instance.platform = "windows" if spec.platform == "windows" else None
        # moto stamps the real time; EC2's LaunchTime belongs on the virtual clock.
        instance.launch_time = self.world.clock.now() - seconds(spec.launched_before)
        self.aliases.instances[spec.alias] = instance_id
        self.specs[spec.alias] = spec

        host = WindowsHost(
            instance_id,
            self.world.content_of_volume,
            validation_scripts=spec.validation_scripts,
            read_only_scan=spec.read_only_scan,
            powershell_modules=spec.powershell_modules,
        )
        system = next(v for v in spec.volumes if v.system)
        root = instance.block_device_mapping[instance.root_device_name]
        root_volume = self.backend.get_volume(root.volume_id)
        root_volume.size = system.size
        if system.encryption != "none":
            root_volume.encrypted = True
            root_volume.kms_key_id = self._key_for(system)
        self._own_volume(spec, system, root.volume_id, host)
        for volume in spec.volumes:
            if volume.system:
                continue
            encryption: dict[str, Any] = {}
            if volume.encryption != "none":
                encryption = {"Encrypted": True, "KmsKeyId": self._key_for(volume)}
            volume_id = self.ec2.create_volume(
                Size=volume.size,
                AvailabilityZone=spec.availability_zone,
                VolumeType="gp3",
                **encryption,
            )["VolumeId"]
            self.ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=volume.device)
            self._own_volume(spec, volume, volume_id, host)
        # The instance's own disks have been there all along: Windows has them already.
        for record in self.world.attachments:
            if record.instance_id == instance_id:
                record.appeared = True
        if spec.platform == "windows":
            self.world.hosts[instance_id] = host
        if spec.ping_status is not None:
            self.world.managed[instance_id] = ManagedInstance(
                instance_id=instance_id,
                ping_status=spec.ping_status,
                platform_type="Windows" if spec.platform == "windows" else "Linux",
                platform_name="Microsoft Windows Server 2022 Datacenter"
                if spec.platform == "windows"
                else "Amazon Linux",
                platform_version="10.0.20348" if spec.platform == "windows" else "2023",
                computer_name=host.computer_name,
                ip_address=str(instance.private_ip or "10.0.0.10"),
            )
        if spec.state == "stopped":
            self.ec2.stop_instances(InstanceIds=[instance_id])
        return instance_id

    def _key_for(self, volume: VolumeSpec) -> str:
        """The KMS key ARN the volume is encrypted with: the account's aws/ebs key, or one
        customer managed key the scenario's owner created (IAM must then allow its use)."""
        kms: Any = boto3.client("kms", region_name=self.world.region)
        if volume.encryption == "aws-managed":
            found = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
            # moto makes aws/ebs an ordinary key; on AWS it is AWS managed (KeyManager AWS),
            # usable through EBS by the account's principals without an identity permission.
            backend = kms_backends[self.world.account_id][self.world.region]
            backend.keys[found["KeyId"]].key_manager = "AWS"
            return str(found["Arn"])
        if not self._customer_key:
            self._customer_key = str(
                kms.create_key(Description="the backed-up volumes' own key")["KeyMetadata"]["Arn"]
            )
        return self._customer_key

    def _own_volume(
        self, instance: InstanceSpec, spec: VolumeSpec, volume_id: str, host: WindowsHost
    ) -> None:
        self.aliases.volumes[f"{instance.alias}.{spec.alias}"] = volume_id
        seed = uuid.uuid5(_IDENTITY_SEEDS, f"{self.aliases.seed}/{instance.alias}/{spec.alias}")
        content = windows_disk(
            size_gib=spec.size,
            partition_style=spec.partition_style,
            drive_letters=list(spec.drive_letters),
            system=spec.system,
            identity=spec.identity or new_identity(spec.partition_style, seed),
            unlettered=spec.unlettered_volumes,
        )
        now = self.world.clock.now()
        data = [p for p in content.partitions if p.holds_data]
        for age in range(spec.live_shadow_copies, 0, -1):
            # Shadow copies left behind on the live volume by earlier runs, a day apart.
            for partition in data[:1]:
                content.shadow_copies.append(
                    ShadowCopy(
                        id=self.aliases.new_guid(),
                        set_id=self.aliases.new_guid(),
                        partition=partition.number,
                        install_date=now - seconds(age * 86400),
                    )
                )
        content.lineage = volume_id
        self.world.volume_contents[volume_id] = content
        host.add_disk(volume_id, own=True, system=spec.system)

    # -- snapshots ------------------------------------------------------------------------
    def _volumes_of(
        self, instance_alias: str, volume_aliases: list[str] | None
    ) -> tuple[list[VolumeSpec], list[str]]:
        """The volumes the backup snapshots, and what it reports it could not back up (as
        documents/backup.ps1 does: a drive on a dynamic disk has no partition of its own, a
        volume mounted in a folder has no drive letter; the others are backed up)."""
        spec = self.specs[instance_alias]
        chosen = (
            [spec.volume(alias) for alias in volume_aliases]
            if volume_aliases
            else [v for v in spec.volumes if v.drive_letters or v.mount_folder]
        )
        volumes, problems = [], []
        for volume in chosen:
            if volume.dynamic:
                problems += [
                    f"drive {letter}: not backed up, no single disk holds it (a dynamic, "
                    "striped or spanned volume?)"
                    for letter in volume.drive_letters
                ]
            elif volume.mount_folder and not volume.drive_letters:
                problems.append(
                    f"mounted at {volume.mount_folder} with no drive letter: not backed up "
                    "(give it a drive letter to include it)"
                )
            else:
                volumes.append(volume)
        return volumes, problems

    def backup(
        self,
        instance_alias: str,
        name: str | None,
        volume_aliases: list[str] | None,
        events: str,
        record_shadow_ids: bool,
        delete_shadows: bool = True,
    ) -> dict[str, str]:
        """The nightly DiskShadow run: shadow copies, EBS snapshots, delete shadows (unless
        the run stopped before it: its shadow copies then stay on the live volumes)."""
        self._policies_memo = {}
        try:
            return self._backup(
                instance_alias, name, volume_aliases, events, record_shadow_ids, delete_shadows
            )
        finally:
            self._policies_memo = None

    def _backup(
        self,
        instance_alias: str,
        name: str | None,
        volume_aliases: list[str] | None,
        events: str,
        record_shadow_ids: bool,
        delete_shadows: bool,
    ) -> dict[str, str]:
        self.backups += 1
        began = self.world.clock.now()  # the script's $Began: its paced start counts from here
        name = name or f"{instance_alias}-backup{self.backups}"
        if BACKUP_MODULE not in self.specs[instance_alias].powershell_modules:
            # documents/backup.ps1 refuses before anything else: no shadow copy, no snapshot.
            self.backup_summaries.append(
                {
                    "instance": instance_alias,
                    "backup": name,
                    "ok": False,
                    "problems": [f"the PowerShell module {BACKUP_MODULE} is not installed"],
                }
            )
            return {}
        volumes, problems = self._volumes_of(instance_alias, volume_aliases)
        summary: dict[str, Any] = {
            "instance": instance_alias,
            "backup": name,
            "ok": not problems,
            "problems": problems,
            "retries": [],
        }
        self.backup_summaries.append(summary)
        instance_id = self.aliases.instances[instance_alias]
        with self._on_the_instance(instance_id):
            # The script maps drive letters to EBS volumes (Get-EC2Volume by attachment).
            self.ec2.describe_volumes(
                Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
            )
        set_id = self.aliases.new_guid()
        for volume in volumes:
            self._content(instance_alias, volume).day_of_writes()
        shadows = {v.alias: self._create_shadow_copies(instance_alias, v, set_id) for v in volumes}
        # `create` released the writers: the volumes keep changing until the snapshots start.
        self.world.clock.sleep(self.world.timing.shadow_copy_seconds)
        for volume in volumes:
            self._content(instance_alias, volume).keep_writing(
                self.world.timing.shadow_copy_seconds
            )
        made: dict[str, str] = {}
        previous = self.world.snapshot_event_kind
        self.world.snapshot_event_kind = "createSnapshot" if events == "single" else ""
        # The snapshot script begins: its retries' budget runs from here.
        deadline = self.world.clock.now() + seconds(self.retry.budget_seconds)
        try:
            for k, volume in enumerate(volumes):
                alias = f"{name}.{volume.alias}"
                self._paced_start(began, k)
                try:
                    made[alias] = self._snapshot(
                        alias,
                        instance_alias,
                        volume,
                        set_id,
                        shadows[volume.alias],
                        record_shadow_ids,
                        {},
                        _Retrying(deadline, summary["retries"]),
                    )
                except ClientError as exc:
                    # As the script reports a volume whose CreateSnapshot failed: the others go on.
                    summary["ok"] = False
                    summary["problems"].append(
                        f"{volume.alias}: not snapshotted: {_code(exc)} after "
                        f"{_retries_of(summary, volume.alias)} retries of the script's"
                    )
        finally:
            self.world.snapshot_event_kind = previous
        for volume in volumes if delete_shadows else []:
            self._delete_shadow_copies(instance_alias, volume, shadows[volume.alias])
        if events == "multi":
            self._queue_multi_event(list(made.values()))
        self._send_output(instance_id, name, summary["retries"])
        return made

    def _paced_start(self, began: datetime, k: int) -> None:
        """documents/backup.ps1's paced start: its k-th CreateSnapshot no sooner than
        (k + 1) * $SnapshotGapSeconds after the script began."""
        pause = (
            began + seconds(self.retry.paced_at(0.0, k)) - self.world.clock.now()
        ).total_seconds()
        if pause > 0:
            self.world.clock.sleep(pause)

    def _send_output(
        self, instance_id: str, name: str, retries: list[dict[str, Any]] | None = None
    ) -> None:
        """The SSM agent sends the backup's output to CloudWatch Logs (the maintenance
        window's CloudWatchOutputConfig) with the instance's role: the calls the SSM User
        Guide lists for CloudWatch output (DescribeLogGroups, DescribeLogStreams,
        CreateLogStream, PutLogEvents)."""
        if not self.backup_log_group:
            return
        logs: Any = boto3.client("logs", region_name=self.world.region)
        stream = f"{name}/{instance_id}/aws-runPowerShellScript/stdout"
        with self._on_the_instance(instance_id):
            logs.describe_log_groups(logGroupNamePrefix=self.backup_log_group)
            logs.describe_log_streams(
                logGroupName=self.backup_log_group, logStreamNamePrefix=stream
            )
            logs.create_log_stream(logGroupName=self.backup_log_group, logStreamName=stream)
            logs.put_log_events(
                logGroupName=self.backup_log_group,
                logStreamName=stream,
                logEvents=[
                    {
                        "timestamp": int(self.world.clock.now().timestamp() * 1000),
                        "message": f"vss-restore backup {name} done"
                        + "".join(
                            f"; {r['volume']}: {r['code']}, retry {r['retry']} in "
                            f"{r['wait_seconds']:.1f} s"
                            for r in retries or []
                        ),
                    }
                ],
            )

    def _content(self, instance_alias: str, volume: VolumeSpec) -> DiskContent:
        return self.world.content_of_volume(
            self.aliases.volumes[f"{instance_alias}.{volume.alias}"]
        )

    def _create_shadow_copies(
        self, instance_alias: str, volume: VolumeSpec, set_id: str
    ) -> list[ShadowCopy]:
        volume_id = self.aliases.volumes[f"{instance_alias}.{volume.alias}"]
        content = self.world.content_of_volume(volume_id)
        now = self.world.clock.now()
        created = [
            ShadowCopy(
                self.aliases.new_guid(), set_id, partition.number, now, files=dict(partition.files)
            )
            for partition in content.partitions
            if partition.holds_data
        ]
        content.shadow_copies.extend(created)
        host = self.world.hosts.get(self.aliases.instances[instance_alias])
        for watcher in host.shadow_copy_watchers if host is not None else []:
            for shadow in created:
                watcher(volume_id, shadow)
        return created

    def _delete_shadow_copies(
        self, instance_alias: str, volume: VolumeSpec, shadows: list[ShadowCopy]
    ) -> None:
        volume_id = self.aliases.volumes[f"{instance_alias}.{volume.alias}"]
        content = self.world.content_of_volume(volume_id)
        ids = {s.id for s in shadows}
        content.shadow_copies = [s for s in content.shadow_copies if s.id not in ids]

    def _snapshot(
        self,
        alias: str,
        instance_alias: str,
        volume: VolumeSpec,
        set_id: str,
        shadows: list[ShadowCopy],
        record_shadow_ids: bool,
        extra_tags: Mapping[str, str],
        retrying: "_Retrying | None" = None,
    ) -> str:
        volume_id = self.aliases.volumes[f"{instance_alias}.{volume.alias}"]
        instance_id = self.aliases.instances[instance_alias]
        # Exactly the tags the backup script writes at creation (BackupDocument), which the
        # instance policy allows; the scenario's own labels are added afterwards, by hand.
        snapshot_tags = {
            self.marker.key: self.marker.value,
            vss_tags.INSTANCE_ID: instance_id,
            vss_tags.DRIVE_LETTERS: ",".join(volume.drive_letters),
            vss_tags.DEVICE: volume.device,
        }
        if record_shadow_ids and shadows:
            snapshot_tags[vss_tags.SHADOW_COPY_ID] = ",".join(s.id for s in shadows)
            snapshot_tags[vss_tags.SHADOW_SET_ID] = set_id
        labels = {"Name": f"{instance_alias} {volume.alias}: {alias}", **extra_tags}
        snapshot_tags.update({k: v for k, v in labels.items() if k in snapshot_tags})
        labels = {k: v for k, v in labels.items() if k not in snapshot_tags}
        request = {
            "VolumeId": volume_id,
            # As BackupDocument writes it (documents/backup.ps1).
            "Description": f"vss-restore backup of {instance_id} "
            f"{','.join(volume.drive_letters)} ({volume.device})",
            "TagSpecifications": [
                {"ResourceType": "snapshot", "Tags": vss_tags.as_list(snapshot_tags)}
            ],
        }
        with self._on_the_instance(instance_id):
            if retrying is None:
                snapshot_id: str = self.ec2.create_snapshot(**request)["SnapshotId"]
            else:
                snapshot_id = self._create_with_retries(request, volume.alias, retrying)
        self.ec2.create_tags(Resources=[snapshot_id], Tags=vss_tags.as_list(labels))
        content = self.world.snapshot_contents[snapshot_id]
        for shadow in shadows:
            content.partition(shadow.partition).backup_shadow_id = shadow.id
        self.aliases.snapshots[alias] = snapshot_id
        self.aliases.shadows[alias] = {
            content.partition(s.partition).drive_letter: s.id for s in shadows
        }
        self.aliases.shadow_sets[alias] = set_id
        return snapshot_id

    def _create_with_retries(
        self, request: Mapping[str, Any], volume_alias: str, retrying: "_Retrying"
    ) -> str:
        """documents/backup.ps1's New-SnapshotWithRetry on the virtual clock: a refusal
        with one of $RetryCodes, once the SDK's own retries are spent, is tried again after
        a full-jitter wait, unless the wait would end past the budget."""
        for attempt in itertools.count():
            try:
                with self.world.faults.acting_as(BACKUP_DOCUMENT):
                    snapshot_id: str = self.ec2.create_snapshot(**request)["SnapshotId"]
                return snapshot_id
            except ClientError as exc:
                wait = self.retry.wait(attempt, self.rng)
                left = (retrying.deadline - self.world.clock.now()).total_seconds()
                if not self.retry.retries(_code(exc), wait, left):
                    raise
                retrying.log.append(
                    {
                        "volume": volume_alias,
                        "code": _code(exc),
                        "retry": attempt + 1,
                        "wait_seconds": round(wait, 3),
                    }
                )
                self.world.clock.sleep(wait)
        raise AssertionError("unreachable")

    def _lose_shadow_copies(self, snapshot_id: str, drives: tuple[str, ...]) -> None:
        """The backup's shadow copies of those drives are gone from the snapshot."""
        content = self.world.snapshot_contents[snapshot_id]
        lettered = {p.number for p in content.partitions if p.drive_letter in drives}
        content.shadow_copies = [s for s in content.shadow_copies if s.partition not in lettered]

    def _queue_multi_event(self, snapshot_ids: list[str]) -> None:
        readiness = [self.world.snapshots[s] for s in snapshot_ids]
        ended = max(r.ready_at for r in readiness)
        pairs = [
            (s, self.backend.get_snapshot(s).volume.id, not r.failure)
            for s, r in zip(snapshot_ids, readiness, strict=True)
        ]
        self.world.queue_event(
            ended + seconds(self.world.timing.event_delivery_seconds),
            multi_volume_event(
                self.world, pairs, started=readiness[0].started_at or ended, ended=ended
            ),
        )

    def ready_made(self, spec: SnapshotSpec) -> str:
        """A snapshot that exists before the scenario starts (no event is sent for it)."""
        instance_alias, volume_alias = spec.volume.split(".", 1)
        volume = self.specs[instance_alias].volume(volume_alias)
        volume_id = self.aliases.volumes[spec.volume]
        content = self.world.content_of_volume(volume_id)
        previous = self.world.snapshot_event_kind
        self.world.snapshot_event_kind = ""
        try:
            # Shadow copies of earlier nights that `delete shadows` missed, a day apart.
            older: list[ShadowCopy] = []
            for age in range(spec.older_shadow_copies, 0, -1):
                for shadow in self._create_shadow_copies(
                    instance_alias, volume, self.aliases.new_guid()
                ):
                    shadow.install_date -= seconds(age * 86400)
                    older.append(shadow)
            extra = self.aliases.substitute(dict(spec.tags))
            if spec.kind == "vss-backup":
                content.day_of_writes()
                set_id = self.aliases.new_guid()
                shadows = self._create_shadow_copies(instance_alias, volume, set_id)
                # As a backup run: the writers go on until the snapshot starts.
                content.keep_writing(self.world.timing.shadow_copy_seconds)
                snapshot_id = self._snapshot(
                    spec.alias,
                    instance_alias,
                    volume,
                    set_id,
                    shadows,
                    spec.record_shadow_ids,
                    extra,
                )
                self._delete_shadow_copies(instance_alias, volume, shadows)
                self._lose_shadow_copies(snapshot_id, spec.lost_shadow_copies)
            else:
                snapshot_id = self._plain_snapshot(spec, volume, volume_id, extra)
                if spec.kind == "aws-vss":
                    for partition in self.world.snapshot_contents[snapshot_id].partitions:
                        partition.consistent = True
            content.shadow_copies = [s for s in content.shadow_copies if s not in older]
        finally:
            self.world.snapshot_event_kind = previous
        readiness = self.world.snapshots[snapshot_id]
        now = self.world.clock.now()
        readiness.ready_at = now + seconds(FAR_FUTURE_SECONDS) if spec.state == "pending" else now
        readiness.failure = "Simulated snapshot failure." if spec.state == "error" else None
        return snapshot_id

    def _plain_snapshot(
        self, spec: SnapshotSpec, volume: VolumeSpec, volume_id: str, extra: Mapping[str, str]
    ) -> str:
        snapshot_tags = {"Name": spec.alias}
        if spec.kind == "aws-vss":
            # What AWS's VSS tooling (AWSEC2-CreateVssSnapshot) writes (FIELD-NOTES §4).
            snapshot_tags.update(
                {
                    vss_tags.AWS_APP_CONSISTENT: "true",
                    "Device": volume.device,
                    vss_tags.AWS_VSS_CONFIG: "SimulatedAwsVssComponents",
                }
            )
        snapshot_tags.update(extra)
        snapshot_id: str = self.ec2.create_snapshot(
            VolumeId=volume_id,
            Description=f"{spec.kind} snapshot {spec.alias}",
            TagSpecifications=[
                {"ResourceType": "snapshot", "Tags": vss_tags.as_list(snapshot_tags)}
            ],
        )["SnapshotId"]
        self.aliases.snapshots[spec.alias] = snapshot_id
        return snapshot_id


@dataclass(frozen=True)
class _Retrying:
    """One backup's retries: when their budget ends, and the log they are written to."""

    deadline: datetime
    log: list[dict[str, Any]]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _retries_of(summary: Mapping[str, Any], volume_alias: str) -> int:
    return sum(1 for r in summary["retries"] if r["volume"] == volume_alias)


def _role_name(alias: str) -> str:
    return f"instance-{alias}"
