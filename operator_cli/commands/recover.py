"""`vss-restore recover --instance ID [--at TIME] [--drive D:]... (--to-instance ID |
--as-new-instance | --volumes-only) [--yes | --dry-run]`: drives back from verified backups.

Without --yes it only shows the plan; --dry-run also prints every call it would make.
docs/recover.md is the runbook (the traps, the console way, the operator's permissions).
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime
from typing import Any, TextIO

from botocore.exceptions import ClientError

from operator_cli import backups, executions
from operator_cli.account import Account
from operator_cli.backups import Backup, Choice
from operator_cli.errors import NOT_VERIFIED, OK, OperatorError
from operator_cli.follow import Follower
from operator_cli.recovery import (
    LAUNCH_ROOT,
    RECOVERED_FROM,
    RECOVERED_INSTANCE,
    Calls,
    Recovered,
    Recovery,
    free_devices,
    identity_of_volumes,
    lineage_of_backup,
    specification,
    tag_set,
)
from vss_restore import tags

_DRIVE = re.compile(r"^([A-Za-z]):?$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
_TIME_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M")
BOOT_TESTED_AT = f"{tags.PREFIX}boot-tested-at"


def add(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "recover",
        parents=[common],
        help="recover an instance's drives (or the whole server) from verified backups",
        description="For each drive, the newest verified consistent snapshot at or before "
        "--at becomes a volume: attached to an instance, as a new instance, or left in an "
        "Availability Zone. Shows the plan; --yes does it. See docs/recover.md.",
    )
    parser.add_argument("--instance", required=True, metavar="ID", help="the backed-up instance")
    parser.add_argument(
        "--at",
        metavar="TIME",
        help="recover as of this UTC time: 2026-11-20 or 2026-11-20T03:00 (default: now)",
    )
    parser.add_argument(
        "--drive", action="append", default=[], metavar="D:", help="a drive (repeat); default all"
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--to-instance", metavar="ID", help="attach the volumes to this instance")
    where.add_argument(
        "--as-new-instance",
        action="store_true",
        help="a new instance from the source's image with the recovered drives, left stopped",
    )
    where.add_argument(
        "--volumes-only", action="store_true", help="create the volumes and stop there"
    )
    parser.add_argument(
        "--availability-zone", metavar="AZ", help="--volumes-only: where (default: the source's)"
    )
    parser.add_argument("--subnet", metavar="ID", help="--as-new-instance: its subnet")
    parser.add_argument("--instance-type", help="--as-new-instance: default the source's")
    parser.add_argument(
        "--image", metavar="AMI", help="--as-new-instance: launch image (default: the source's)"
    )
    parser.add_argument(
        "--new-signature",
        action="store_true",
        help="--to-instance: attach even beside a disk with the same identity (see the runbook)",
    )
    parser.add_argument("--volume-type", default="gp3", choices=("gp3", "gp2", "io2", "io1"))
    parser.add_argument(
        "--initialization-rate",
        type=int,
        metavar="MIB_S",
        help="VolumeInitializationRate, 100-300 MiB/s (costs extra; default: none)",
    )
    parser.add_argument(
        "--verify-first",
        action="store_true",
        help="where the newest backup is not verified, restore it through the workflow now",
    )
    parser.add_argument("--helper", metavar="ID", help="--verify-first: the Windows helper")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--yes", action="store_true", help="do it (default: only show the plan)")
    mode.add_argument("--dry-run", action="store_true", help="print the calls, make none")


def parse_time(text: str) -> datetime:
    cleaned = text.strip().removesuffix("Z").removesuffix("UTC").strip()
    for pattern in _TIME_FORMATS:
        try:
            moment = datetime.strptime(cleaned, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
        # A bare date means the end of that day: its night's backup is included.
        return moment.replace(hour=23, minute=59, second=59) if pattern == "%Y-%m-%d" else moment
    raise OperatorError(f"--at {text!r} is not a UTC time such as 2026-11-20 or 2026-11-20T03:00")


def _drives(given: list[str]) -> list[str]:
    letters = []
    for text in given:
        match = _DRIVE.match(text)
        if not match:
            raise OperatorError(f"--drive {text!r} is not a drive letter such as D:")
        letters.append(match.group(1).upper())
    return letters


def _check(args: argparse.Namespace) -> None:
    backups.check_instance_id(args.instance, "--instance")
    if args.to_instance:
        backups.check_instance_id(args.to_instance, "--to-instance")
    if args.helper:
        backups.check_instance_id(args.helper, "--helper")
    if args.subnet and not _SUBNET.match(args.subnet):
        raise OperatorError(f"--subnet {args.subnet!r} is not a subnet ID (subnet-...)")
    if args.availability_zone and not _ZONE.match(args.availability_zone):
        raise OperatorError(f"--availability-zone {args.availability_zone!r} is not a zone name")
    rate = args.initialization_rate
    if rate is not None and not 100 <= rate <= 300:
        raise OperatorError(f"--initialization-rate {rate}: EBS takes 100 to 300 MiB/s")
    misplaced = [
        (args.subnet or args.instance_type or args.image) and not args.as_new_instance,
        args.availability_zone and not args.volumes_only,
        args.new_signature and not args.to_instance,
        args.helper and not args.verify_first,
    ]
    if any(misplaced):
        raise OperatorError(
            "an option does not fit the recovery asked: --subnet/--instance-type/--image go "
            "with --as-new-instance, --availability-zone with --volumes-only, --new-signature "
            "with --to-instance, --helper with --verify-first"
        )


def run(args: argparse.Namespace, account: Account, out: TextIO) -> int:
    _check(args)
    at = parse_time(args.at) if args.at else datetime.now(UTC)
    source = backups.describe_instance(account, args.instance)
    found = backups.of_instance(account, args.instance)
    if not found:
        if source is None:
            raise OperatorError(
                f"no instance {args.instance} in {account.region}, and no backups of it "
                "(is it in another Region? give --region)"
            )
        raise OperatorError(
            f"no backups of {args.instance} in {account.region}: no snapshot is tagged "
            f"{tags.INSTANCE_ID}={args.instance} (see vss-restore report)"
        )
    choices = backups.choose(found, at, _drives(args.drive), verify_first=args.verify_first)
    name = tags.as_dict(source.get("Tags")).get("Name", "") if source else ""
    target = _target(account, args) if args.to_instance else None
    zone = _zone(args, source, target)
    _check_keys(account, choices)
    _show_plan(args, account, name, at, choices, zone, target, out)
    if args.as_new_instance:
        _check_new_instance(args, source, choices)
    collisions = _collisions(account, choices, target) if target else []
    if collisions:
        _say_collisions(args, collisions, target, out)
        if not args.new_signature:
            raise OperatorError(
                "stopped before creating anything: a recovered disk would collide with a disk "
                "online on the target (see above and docs/recover.md, 'Signature collision')"
            )
    if not (args.yes or args.dry_run):
        out.write("\nnothing created: run again with --yes to do it, or --dry-run for the calls\n")
        return OK
    recovery = Recovery(
        account=account,
        calls=Calls(account.ec2, out, dry_run=args.dry_run),
        who=_who(account),
        when=datetime.now(UTC),
        instance_name=name,
        volume_type=args.volume_type,
        initialization_rate=args.initialization_rate,
    )
    out.write("\n")
    try:
        if any(c.verify_first for c in choices):
            choices = _verify_first(args, account, choices, out)
        if args.as_new_instance:
            return _new_instance(args, recovery, source or {}, choices, out)
        recovered = [Recovered(c.drive, recovery.create_volume(c, zone)) for c in choices]
        if target is None:
            _say_volumes(recovered, zone, args.dry_run, out)
            return OK
        devices = free_devices(target, len(recovered))
        for item, device in zip(recovered, devices, strict=True):
            recovery.attach(item.volume_id, target["InstanceId"], device)
        _say_attached(recovered, devices, target, bool(collisions), args.dry_run, out)
        return OK
    except OperatorError:
        _undo(recovery, out)
        raise
    except ClientError:
        _undo(recovery, out)
        raise


def _undo(recovery: Recovery, out: TextIO) -> None:
    undone = recovery.undo()
    if undone:
        out.write(f"deleted what this run created: {', '.join(undone)}\n")


def _target(account: Account, args: argparse.Namespace) -> dict[str, Any]:
    target = backups.describe_instance(account, args.to_instance)
    if target is not None:
        if target["State"]["Name"] not in ("running", "stopped"):
            raise OperatorError(
                f"--to-instance {args.to_instance} is {target['State']['Name']}: "
                "volumes attach to a running or stopped instance"
            )
        return target
    elsewhere = _region_of(account, args.to_instance)
    if elsewhere:
        raise OperatorError(
            f"--to-instance {args.to_instance} is in {elsewhere}, the backups in "
            f"{account.region}: EBS volumes are made in the snapshots' Region. Copy the "
            "consistent snapshots there first (aws ec2 copy-snapshot), or recover into an "
            f"instance in {account.region}"
        )
    raise OperatorError(f"--to-instance {args.to_instance}: no such instance in {account.region}")


def _region_of(account: Account, instance_id: str) -> str:
    """Which other enabled Region knows the instance (only asked when this one does not)."""
    regions = account.ec2.describe_regions()["Regions"]
    for region in sorted(r["RegionName"] for r in regions):
        if region == account.region:
            continue
        client = account.session.client("ec2", region_name=region)
        try:
            found = client.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except ClientError:
            continue
        if found:
            return region
    return ""


def _zone(args: argparse.Namespace, source: Any, target: Any) -> str:
    if target is not None:
        return str(target["Placement"]["AvailabilityZone"])
    if args.availability_zone:
        return str(args.availability_zone)
    if source is not None:
        return str(source["Placement"]["AvailabilityZone"])
    raise OperatorError(
        f"{args.instance} is gone: give --availability-zone (or --subnet) for the volumes"
    )


def _check_keys(account: Account, choices: list[Choice]) -> None:
    """An encrypted snapshot needs its key usable by the operator: ask KMS before creating."""
    keys = {
        str(c.backup.consistent["KmsKeyId"]): c
        for c in choices
        if c.backup.consistent and c.backup.consistent.get("KmsKeyId")
    }
    if not keys:
        return
    kms = account.session.client("kms", region_name=account.region)
    for key, choice in keys.items():
        try:
            state = kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise OperatorError(
                f"drive {choice.backup.label}: its snapshot {choice.backup.consistent_id} is "
                f"encrypted with {key}, which you cannot use ({code}): ask for kms:DescribeKey, "
                "kms:CreateGrant, kms:Decrypt and kms:GenerateDataKeyWithoutPlaintext on it "
                "(docs/recover.md, 'Permissions')"
            ) from exc
        if state != "Enabled":
            raise OperatorError(
                f"drive {choice.backup.label}: its snapshot {choice.backup.consistent_id} is "
                f"encrypted with {key}, which is {state}: EBS cannot decrypt it until the key "
                "is enabled again"
            )


def _collisions(
    account: Account, choices: list[Choice], target: dict[str, Any]
) -> list[tuple[Choice, str]]:
    """Recovered drives whose disk identity a volume attached to the target shares."""
    attached = [
        str(m["Ebs"]["VolumeId"]) for m in target.get("BlockDeviceMappings", []) if "Ebs" in m
    ]
    lineages = identity_of_volumes(account, attached)
    found = []
    for choice in choices:
        ours = lineage_of_backup(account, choice.backup.consistent_id, choice.backup.snapshot_id)
        for volume_id, lineage in lineages.items():
            if ours & lineage:
                found.append((choice, volume_id))
                break
    return found


def _say_collisions(
    args: argparse.Namespace,
    collisions: list[tuple[Choice, str]],
    target: Any,
    out: TextIO,
) -> None:
    out.write(f"\nSIGNATURE COLLISION on {target['InstanceId']}:\n")
    for choice, volume_id in collisions:
        out.write(
            f"  drive {choice.backup.label or choice.drive} comes from the same disk as "
            f"{volume_id}, attached there: Windows will keep the recovered disk offline\n"
        )
    if args.new_signature:
        out.write(
            "  --new-signature: it is attached offline; onlining it makes Windows write a new "
            "signature, the original keeps its drive letter (steps printed at the end)\n"
        )


def _show_plan(
    args: argparse.Namespace,
    account: Account,
    name: str,
    at: datetime,
    choices: list[Choice],
    zone: str,
    target: Any,
    out: TextIO,
) -> None:
    who = f"{args.instance}{f' ({name})' if name else ''}"
    out.write(f"recover {who} as of {at:%Y-%m-%d %H:%M:%S} UTC, in {account.region}\n")
    header = ["drive", "backup (UTC)", "consistent snapshot", "size", "from backup"]
    rows = []
    for c in choices:
        b = c.backup
        rows.append(
            [
                b.label or b.device,
                f"{b.taken:%Y-%m-%d %H:%M}",
                "to verify first" if c.verify_first else b.consistent_id,
                f"{b.size_gib} GiB",
                b.snapshot_id,
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out.write("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
    for c in choices:
        if c.newer_unverified is not None:
            later = c.newer_unverified
            out.write(
                f"  note: for drive {c.backup.label} a newer backup, {later.snapshot_id} of "
                f"{later.taken:%Y-%m-%d %H:%M} UTC, is not recoverable ({later.why_not()}); "
                "--verify-first restores it now\n"
            )
        if c.verify_first:
            out.write(
                f"  drive {c.backup.label} from {c.backup.snapshot_id}, which has no verified "
                f"consistent snapshot ({c.backup.why_not()}): the restore workflow runs for it "
                "first, keeping its volume\n"
            )
    volumes = f"{len(choices)} {args.volume_type} volume(s) in {zone}"
    if target is not None:
        out.write(f"will create {volumes}, attached to {target['InstanceId']} at free devices\n")
    elif args.as_new_instance:
        out.write(
            f"will launch a new instance from the source's image in "
            f"{args.subnet or 'the source subnet'}, stop it, put {volumes} in place of its "
            "disks and leave it stopped\n"
        )
    else:
        out.write(f"will create {volumes} and stop there\n")
    out.write(f"each tagged {tags.RESOURCE}=recovered-... with who and when\n")


def _check_new_instance(args: argparse.Namespace, source: Any, choices: list[Choice]) -> None:
    if source is None and not (args.image and args.subnet and args.instance_type):
        raise OperatorError(
            f"{args.instance} is gone: --as-new-instance needs --image (the same Windows "
            "version, license included), --subnet and --instance-type"
        )
    root = str((source or {}).get("RootDeviceName") or "/dev/sda1")
    if not any(_same_device(c.backup.device, root) for c in choices):
        raise OperatorError(
            f"--as-new-instance needs the system drive (device {root}) among the drives: "
            "leave out --drive, or add the system drive's letter"
        )


def _same_device(a: str, b: str) -> bool:
    return a.removeprefix("/dev/") == b.removeprefix("/dev/")


def _new_instance(
    args: argparse.Namespace,
    recovery: Recovery,
    source: dict[str, Any],
    choices: list[Choice],
    out: TextIO,
) -> int:
    """Launch from the source's image (Windows keeps its license-included billing), stop,
    put the recovered drives in place of its disks, leave it stopped.

    Not RegisterImage from the snapshots: EC2's RegisterImage documentation says a Windows
    AMI registered from a snapshot cannot launch successfully (no billing product code)."""
    calls = recovery.calls
    root_device = str(source.get("RootDeviceName") or "/dev/sda1")
    subnet = args.subnet or source.get("SubnetId")
    groups = [g["GroupId"] for g in source.get("SecurityGroups", [])] if not args.subnet else []
    instance_tags = tag_set(
        RECOVERED_INSTANCE,
        recovery.who,
        recovery.when,
        {
            "Name": f"{recovery.instance_name or args.instance} recovered",
            RECOVERED_FROM: args.instance,
        },
    )
    launch: dict[str, Any] = {
        "ImageId": args.image or source["ImageId"],
        "InstanceType": args.instance_type or source["InstanceType"],
        "MinCount": 1,
        "MaxCount": 1,
        "TagSpecifications": [
            specification("instance", instance_tags),
            specification("network-interface", instance_tags),
            specification("volume", {**instance_tags, tags.RESOURCE: LAUNCH_ROOT}),
        ],
    }
    if subnet:
        launch["SubnetId"] = subnet
    if groups:
        launch["SecurityGroupIds"] = groups
    try:
        launched = calls.make("RunInstances", **launch)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("InsufficientInstanceCapacity",):
            raise OperatorError(
                f"no capacity for {launch['InstanceType']} in that Availability Zone now "
                f"({code}): try --instance-type, or --subnet in another zone"
            ) from exc
        raise
    if calls.dry_run:
        instance_id, zone = calls.placeholder("instance"), "<its zone>"
        old_root = calls.placeholder("launch root volume")
    else:
        instance = launched["Instances"][0]
        instance_id = str(instance["InstanceId"])
        zone = str(instance["Placement"]["AvailabilityZone"])
        calls.created.append(("instance", instance_id))
        recovery.wait(f"{instance_id} to run", lambda: _state(recovery, instance_id) == "running")
    calls.make("StopInstances", InstanceIds=[instance_id])
    if not calls.dry_run:
        recovery.wait(f"{instance_id} to stop", lambda: _state(recovery, instance_id) == "stopped")
        old_root = _launch_root(recovery, instance_id, root_device)
    calls.make("DetachVolume", VolumeId=old_root, InstanceId=instance_id)
    if not calls.dry_run:
        recovery.wait(
            f"{old_root} to detach",
            lambda: (
                not recovery.account.ec2.describe_volumes(VolumeIds=[old_root])["Volumes"][0][
                    "Attachments"
                ]
            ),
        )
    calls.make("DeleteVolume", VolumeId=old_root)
    recovered = []
    for choice in choices:
        volume_id = recovery.create_volume(choice, zone)
        device = root_device if _same_device(choice.backup.device, root_device) else ""
        recovered.append(Recovered(choice.drive, volume_id, device or choice.backup.device))
    for item in recovered:
        recovery.attach(item.volume_id, instance_id, item.device)
    out.write(f"\n{'would leave' if calls.dry_run else 'left'} {instance_id} stopped, with:\n")
    for item in recovered:
        out.write(f"  {item.device:<10} {item.volume_id}  (drive {item.drive})\n")
    tested = any(
        c.backup.consistent and BOOT_TESTED_AT in tags.as_dict(c.backup.consistent.get("Tags"))
        for c in choices
    )
    if not tested:
        out.write(
            "the system drive's consistent snapshot was never shown to boot: watch the first "
            "start (Get system log / screenshot in the console)\n"
        )
    out.write(
        f"it carries {args.instance}'s computer name and domain membership: start it only "
        "once the original is stopped, or in an isolated subnet:\n"
        f"  aws ec2 start-instances --region {recovery.account.region} "
        f"--instance-ids {instance_id}\n"
    )
    return OK


def _state(recovery: Recovery, instance_id: str) -> str:
    found = recovery.account.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(found[0]["Instances"][0]["State"]["Name"])


def _launch_root(recovery: Recovery, instance_id: str, root_device: str) -> str:
    """The fresh root volume RunInstances made: ours (tagged at launch) and nothing else."""
    found = recovery.account.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    mappings = found[0]["Instances"][0].get("BlockDeviceMappings", [])
    root = next((m for m in mappings if _same_device(m["DeviceName"], root_device)), None)
    if root is None:
        raise OperatorError(f"{instance_id} has no root volume at {root_device}")
    volume_id = str(root["Ebs"]["VolumeId"])
    volume = recovery.account.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    if tags.as_dict(volume.get("Tags")).get(tags.RESOURCE) != LAUNCH_ROOT:  # type: ignore[arg-type]
        raise OperatorError(f"{volume_id} is not the launch root this run tagged: left alone")
    return volume_id


def _verify_first(
    args: argparse.Namespace, account: Account, choices: list[Choice], out: TextIO
) -> list[Choice]:
    """Run the restore workflow for each backup to verify, then recover from its result."""
    done = []
    for choice in choices:
        if not choice.verify_first:
            done.append(choice)
            continue
        snapshot_id = choice.backup.snapshot_id
        request: dict[str, Any] = {"snapshot_id": snapshot_id, "keep_volume": True}
        if args.helper:
            request["helper_instance_id"] = args.helper
        if args.dry_run:
            out.write(f"  would call states StartExecution {json.dumps(request)} and follow it\n")
            done.append(choice)
            continue
        arn = account.sfn.start_execution(
            stateMachineArn=account.state_machine_arn,
            name=executions.execution_name(snapshot_id, datetime.now(UTC)),
            input=json.dumps(request),
        )["executionArn"]
        out.write(f"restoring {snapshot_id} through the workflow first: {arn}\n")
        Follower(account, arn, out, timeout_seconds=48 * 3600).run()
        again = backups.of_instance(account, args.instance)
        fresh: Backup | None = next((b for b in again if b.snapshot_id == snapshot_id), None)
        if fresh is None or not fresh.recoverable:
            why = fresh.why_not() if fresh else "it is gone"
            raise OperatorError(
                f"the restore of {snapshot_id} did not verify it ({why}): nothing recovered for "
                f"drive {choice.backup.label}; see vss-restore status {snapshot_id}",
                exit_code=NOT_VERIFIED,
            )
        kept = next(
            (
                str(v.get("volume_kept"))
                for v in executions.verdicts(executions.describe(account, arn))
                if v.get("snapshot_id") == snapshot_id and v.get("volume_kept")
            ),
            "",
        )
        zone = ""
        if kept:
            volumes = account.ec2.describe_volumes(VolumeIds=[kept])["Volumes"]
            zone = str(volumes[0]["AvailabilityZone"]) if volumes else ""
        out.write(
            f"verified: drive {fresh.label} from {fresh.consistent_id}"
            + (f" (the workflow kept its volume {kept} in {zone})" if kept else "")
            + "\n"
        )
        done.append(Choice(choice.drive, fresh, False, None, kept, zone))
    return done


def _who(account: Account) -> str:
    sts = account.session.client("sts", region_name=account.region)
    return str(sts.get_caller_identity()["Arn"])


def _say_volumes(recovered: list[Recovered], zone: str, dry_run: bool, out: TextIO) -> None:
    out.write(f"\n{'would create' if dry_run else 'created'} in {zone}:\n")
    for item in recovered:
        out.write(f"  drive {_letter(item.drive)}  {item.volume_id}\n")


def _say_attached(
    recovered: list[Recovered],
    devices: list[str],
    target: dict[str, Any],
    collided: bool,
    dry_run: bool,
    out: TextIO,
) -> None:
    out.write(f"\n{'would attach' if dry_run else 'attached'} to {target['InstanceId']}:\n")
    for item, device in zip(recovered, devices, strict=True):
        out.write(f"  drive {_letter(item.drive)}  {item.volume_id} at {device}\n")
    if collided:
        out.write(
            "on the instance (PowerShell as administrator), for each recovered disk:\n"
            "  Get-Disk | Where-Object SerialNumber -like 'vol<id without the dash>*'\n"
            "  Set-Disk -Number N -IsReadOnly $false  # first: a read-only clone stays offline\n"
            "  Set-Disk -Number N -IsOffline $false   # Windows writes a new signature\n"
            "  Get-Partition -DiskNumber N | Set-Partition -NewDriveLetter R   # a free letter\n"
        )
    else:
        out.write(
            "Windows may bring the disks online with their old drive letters; if a disk is "
            "offline: Set-Disk -Number N -IsOffline $false (docs/recover.md)\n"
        )


def _letter(drive: str) -> str:
    return f"{drive}:" if len(drive) == 1 else drive
