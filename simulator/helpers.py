"""The helper fleet's side of AWS (HelperMode=fleet), as strict as EC2 and SSM are.

- AWS's public SSM parameter for the latest Windows Server 2022 AMI, seeded in the account
  and naming an AMI Amazon owns (Windows, x86_64): EC2 User Guide, "Find a Windows AMI using
  Systems Manager Parameter Store".
- RunInstances: the image must exist; a zone can be out of capacity for the instance type
  (InsufficientInstanceCapacity, EC2 API Reference "Error codes"); the ClientToken makes a
  retry return the same instance, and the same token with other parameters is refused
  (IdempotentParameterMismatch, EC2 API Reference "Ensuring idempotency"); moto does neither.
  The account's On-Demand vCPU quota (VcpuLimitExceeded) is simulator/quotas.py's, checked
  after the client token.
- Windows boot to SSM Online: MODELLED, not measured. AWS publishes no figure; the console
  says "wait at least 4 minutes after launching an instance" before the Windows password,
  written by EC2Launch during the first boot, is there, and GetPasswordData's reference
  recommends waiting "up to 15 minutes". The model: Online 240 s after launch
  (Timing.helper_boot_seconds); a scenario can make a helper never come Online.
- TerminateInstances: the agent stops answering (ConnectionLost), its commands never end
  (they expire: simulator/instance_loss.py), the instance's disks leave Windows, and EC2's
  "EC2 Instance State-change Notification" events (shutting-down, terminated) follow. A
  helper stopped or terminated by someone else mid-revert: simulator/instance_loss.py.
- Billing: Windows On-Demand is per second with a one-minute minimum, from running until
  terminated (AWS What's New, 2021-06-11, "per second billing for EC2 Windows Server").
- The boot test's throwaway instance (docs/boot-test.md), launched from the source's own
  image: its launch root is fresh Windows; started again on a root swapped in while stopped,
  it comes SSM Online after the same modelled boot time only when that root is a bootable
  Windows system volume (a system partition and C:, consistent); a scenario can make it
  never boot. EC2's status checks follow the boot: "initializing", then "ok" once booted,
  "impaired" once the boot time has passed without it (EC2 User Guide, "Status checks for
  your instances": the instance status check is the reachability of the instance's OS).
  Its agent reaches SSM only if its security group lets HTTPS out to the endpoints.
"""

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.ec2.responses.instances import InstanceResponse
from moto.ssm.models import ssm_backends

from simulator.disks import DiskContent, new_identity, windows_disk
from simulator.patching import Patches
from simulator.windows import WindowsHost
from simulator.world import ManagedInstance, World, arn, base_event, seconds
from vss_restore import tags
from vss_restore.settings import DEFAULT_HELPER_IMAGE

# The AMI the public parameter names in the simulated account (an ID of AWS's form).
AMAZON_WINDOWS_AMI = "ami-0f1e2d3c4b5a69788"
# The (older) Windows Server image the scenarios' own instances were launched from
# (simulator/estate.py): still registered, as AWS keeps its images for a while.
SOURCES_WINDOWS_AMI = "ami-0c2b0d3fb02824d92"
AMAZON_LINUX_AMI = "ami-0a1b2c3d4e5f60789"
BILLING_MINIMUM_SECONDS = 60.0
STATE_CHANGE = "EC2 Instance State-change Notification"
_IDENTITY_SEEDS = uuid.UUID("4b6f1a2e-8c3d-4e5f-9a0b-1c2d3e4f5a6b")
Method = Callable[..., Any]


@dataclass
class LaunchedHelper:
    instance_id: str
    zone: str
    launched_at: datetime
    online_at: datetime | None  # None: never comes Online
    terminated_at: datetime | None = None

    def billed_seconds(self, now: datetime) -> float:
        end = self.terminated_at or now
        return max((end - self.launched_at).total_seconds(), BILLING_MINIMUM_SECONDS)


@dataclass
class BootTestInstance:
    """A boot test's throwaway instance: its runs (billed), and when it boots, if ever."""

    instance_id: str
    launched_at: datetime
    reaches_ssm: bool
    runs: list[list[datetime | None]] = field(default_factory=list)  # [start, end]
    started_at: datetime | None = None  # the latest start
    boots_at: datetime | None = None  # None: this start never boots
    swapped: bool = False  # started on a root other than its launch root
    terminated_at: datetime | None = None

    def billed_seconds(self, now: datetime) -> float:
        return sum(
            max(((end or now) - start).total_seconds(), BILLING_MINIMUM_SECONDS)
            for start, end in self.runs
            if start is not None
        )


@dataclass
class Fleet:
    """What the simulated account knows of the helpers launched, and the scenario's knobs."""

    full_zones: set[str] = field(default_factory=set)  # no capacity for any helper type
    never_online: int = 0  # the next this many helpers never reach SSM Online
    launched: dict[str, LaunchedHelper] = field(default_factory=dict)
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # token: (params, id)
    root_volumes: set[str] = field(default_factory=set)  # the helpers' own C: volumes
    boot_tests: dict[str, BootTestInstance] = field(default_factory=dict)
    boot_tests_never_online: int = 0  # the next this many swapped-in roots never boot

    def running(self) -> list[LaunchedHelper]:
        return [h for h in self.launched.values() if h.terminated_at is None]


def seed(world: World) -> None:
    """AWS's own images and the public parameter, as every account sees them."""
    backend = ec2_backends[world.account_id][world.region]
    for ami_id, name, platform in (
        (AMAZON_WINDOWS_AMI, "Windows_Server-2022-English-Full-Base-2026.11.12", "windows"),
        (SOURCES_WINDOWS_AMI, "Windows_Server-2022-English-Full-Base-2026.08.13", "windows"),
        (AMAZON_LINUX_AMI, "al2023-ami-2023.6.20261110.0-kernel-6.1-x86_64", None),
    ):
        backend.amis[ami_id] = Ami(
            backend,
            ami_id,
            name=name,
            owner_id="801119661308" if platform else "137112412989",
            owner_alias="amazon",
            public=True,
            architecture="x86_64",
            platform=platform,
            root_device_type="ebs",
            virtualization_type="hvm",
        )
    ssm = ssm_backends[world.account_id][world.region]
    # Public parameters cannot be put (the "aws" prefix is reserved): written as AWS has them.
    ssm._parameters[DEFAULT_HELPER_IMAGE].append(
        _parameter(ssm, DEFAULT_HELPER_IMAGE, AMAZON_WINDOWS_AMI, world.clock.now())
    )


def _parameter(backend: Any, name: str, value: str, now: datetime) -> Any:
    from moto.ssm.models import Parameter

    parameter: Any = Parameter  # moto's class is abstract to mypy (CloudFormationModel)
    return parameter(
        account_id=backend.account_id,
        name=name,
        value=value,
        parameter_type="String",
        description=None,
        allowed_pattern=None,
        keyid=None,
        last_modified_date=now,
        version=1,
        data_type="aws:ec2:image",
    )


def network(world: World, zones: list[str]) -> tuple[str, list[str], str]:
    """The operator's VPC with one private subnet per zone, for HelperSubnetIds, reaching SSM
    through interface endpoints with private DNS (Systems Manager User Guide, "Improve the
    security of EC2 instances by using VPC endpoints for Systems Manager"). The endpoints
    have a security group of their own (the third value: what BootTestEndpointSecurityGroupId
    names)."""
    ec2: Any = boto3.client("ec2", region_name=world.region)
    vpc = ec2.create_vpc(CidrBlock="10.80.0.0/16")["Vpc"]["VpcId"]
    # A VPC's DNS support and hostnames: what an endpoint's private DNS needs.
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.80.{index}.0/24", AvailabilityZone=zone)[
            "Subnet"
        ]["SubnetId"]
        for index, zone in enumerate(zones)
    ]
    endpoints_group = ec2.create_security_group(
        GroupName="ssm-endpoints", Description="SSM interface endpoints", VpcId=vpc
    )["GroupId"]
    for service in ("ssm", "ssmmessages", "ec2messages"):
        ec2.create_vpc_endpoint(
            VpcId=vpc,
            ServiceName=f"com.amazonaws.{world.region}.{service}",
            VpcEndpointType="Interface",
            SubnetIds=subnets,
            PrivateDnsEnabled=True,
            SecurityGroupIds=[endpoints_group],
        )
    return vpc, subnets, endpoints_group


# Windows Server AMIs' root device, and its size (AWS's Windows Server 2022 base AMIs: 30 GiB).
WINDOWS_ROOT_DEVICE = "/dev/sda1"
WINDOWS_ROOT_GIB = 30


def install(patches: Patches, world: World, fleet: Fleet) -> None:
    validate = InstanceResponse._validate_block_device_mapping

    def validate_mapping(device_mapping: dict[str, Any]) -> None:
        """EC2 takes a mapping of the AMI's own root device without a size or snapshot (the
        AMI's are used: EC2 User Guide, "Block device mappings"); moto asks for one."""
        ebs = device_mapping.get("Ebs") or {}
        own_root = (
            device_mapping.get("DeviceName") == WINDOWS_ROOT_DEVICE and "Ebs" in device_mapping
        )
        if own_root and not ebs.get("VolumeSize") and not ebs.get("SnapshotId"):
            return
        validate(device_mapping)

    patches.replace(
        InstanceResponse, "_validate_block_device_mapping", staticmethod(validate_mapping)
    )
    patches.wrap(
        InstanceBackend, "run_instances", lambda original: _run_instances(world, fleet, original)
    )
    patches.wrap(
        InstanceBackend,
        "terminate_instances",
        lambda original: _terminate_instances(world, fleet, original),
    )
    patches.wrap(
        InstanceBackend, "stop_instances", lambda original: _stop_instances(world, fleet, original)
    )
    patches.wrap(
        InstanceBackend,
        "start_instances",
        lambda original: _start_instances(world, fleet, original),
    )
    checks = Instance.instance_status

    def instance_status(instance: Any) -> dict[str, Any]:
        clone = fleet.boot_tests.get(instance.id)
        if clone is None or instance.state != "running":
            return dict(checks.fget(instance))  # type: ignore[attr-defined]
        return _boot_test_status(world, clone)

    patches.replace(Instance, "instance_status", property(instance_status))


def _launch_tag(kwargs: dict[str, Any]) -> str:
    found = kwargs.get("tags") or {}
    instance_tags = found.get("instance", {}) if isinstance(found, dict) else {}
    return str(instance_tags.get(tags.RESOURCE, ""))


def _is_fleet_launch(kwargs: dict[str, Any]) -> bool:
    """Tagged at launch as a helper of the fleet (moto's parsed TagSpecifications)."""
    found = kwargs.get("tags") or {}
    instance_tags = found.get("instance", {}) if isinstance(found, dict) else {}
    return instance_tags.get(tags.RESOURCE) == tags.LAUNCHED_HELPER


def _run_instances(world: World, fleet: Fleet, original: Method) -> Method:
    def run_instances(
        backend: Any,
        image_id: str,
        count: int,
        user_data: Any,
        security_group_names: Any,
        **kwargs: Any,
    ) -> Any:
        boot_test = _launch_tag(kwargs) == tags.BOOT_TEST_INSTANCE
        if not boot_test and not _is_fleet_launch(kwargs):
            return original(backend, image_id, count, user_data, security_group_names, **kwargs)
        world.settle()
        token = str(kwargs.get("client_token") or "")
        asked = _fingerprint(image_id, kwargs)
        if token in fleet.tokens:
            params, instance_id = fleet.tokens[token]
            if params != asked:
                raise EC2ClientError(
                    "IdempotentParameterMismatch",
                    f"The client token {token} was used with other parameters.",
                )
            return _reservation_of(backend, instance_id)
        image = backend.amis.get(image_id)
        if image is None:
            raise EC2ClientError(
                "InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist"
            )
        subnet = backend.get_subnet(kwargs["subnet_id"])
        zone = subnet.availability_zone
        if zone in fleet.full_zones:
            kind = kwargs.get("instance_type", "")
            raise EC2ClientError(
                "InsufficientInstanceCapacity",
                f"We currently do not have sufficient {kind} capacity in the Availability Zone"
                f" you requested ({zone}). Our system will be working on provisioning"
                " additional capacity. You can currently get capacity by not specifying an"
                " Availability Zone in your request or choosing another one.",
            )
        for mapping in kwargs.get("block_device_mappings") or []:
            ebs = mapping.get("Ebs") or {}
            if mapping.get("DeviceName") == WINDOWS_ROOT_DEVICE and not ebs.get("VolumeSize"):
                ebs["VolumeSize"] = WINDOWS_ROOT_GIB  # the AMI's root snapshot size
        with world.instantly():
            reservation = original(
                backend, image_id, count, user_data, security_group_names, **kwargs
            )
        instance = reservation.instances[0]
        now = world.clock.now()
        instance.launch_time = now  # moto stamps the real time; EC2's is the virtual one
        instance.platform = image.platform
        if boot_test:
            fleet.tokens[token] = (asked, instance.id)
            _first_boot_of_a_clone(world, instance)
            fleet.boot_tests[instance.id] = BootTestInstance(
                instance.id,
                now,
                reaches_ssm(backend, subnet, world.region) and _https_out(backend, kwargs),
                runs=[[now, None]],
                started_at=now,
                boots_at=now + seconds(world.timing.helper_boot_seconds),
            )
            return reservation
        if fleet.never_online > 0:
            fleet.never_online -= 1
            online_at = None
        elif not reaches_ssm(backend, subnet, world.region):
            online_at = None
        else:
            online_at = now + seconds(world.timing.helper_boot_seconds)
        fleet.launched[instance.id] = LaunchedHelper(instance.id, zone, now, online_at)
        fleet.tokens[token] = (asked, instance.id)
        fleet.root_volumes.add(_boot_windows(world, instance))
        world.happenings.append(_ComesOnline(world, fleet, instance.id))
        return reservation

    return run_instances


def _https_out(backend: Any, kwargs: dict[str, Any]) -> bool:
    """Whether the instance's security groups let HTTPS out to the SSM endpoints: to
    anywhere, or to a security group the VPC's interface endpoints carry. A group without
    such an egress rule keeps the agent from SSM (it calls out on 443 only)."""
    endpoint_groups = {
        str(group)
        for endpoint in backend.vpc_end_points.values()
        for group in (getattr(endpoint, "security_group_ids", None) or [])
    }
    for group_id in kwargs.get("security_group_ids") or []:
        group = backend.get_security_group_from_id(group_id)
        for rule in getattr(group, "egress_rules", []):
            protocol = str(rule.ip_protocol)
            ports = protocol == "-1" or (
                protocol == "tcp" and int(rule.from_port) <= 443 <= int(rule.to_port)
            )
            anywhere = rule.ip_range.get("CidrIp") == "0.0.0.0/0"
            to_endpoints = rule.source_group.get("GroupId") in endpoint_groups
            if ports and (anywhere or to_endpoints):
                return True
    return False


def _first_boot_of_a_clone(world: World, instance: Any) -> None:
    """The launch root: the image's own fresh Windows (thrown away by the boot test)."""
    root = instance.block_device_mapping[instance.root_device_name]
    seed_id = uuid.uuid5(_IDENTITY_SEEDS, instance.id)
    world.volume_contents[root.volume_id] = windows_disk(
        size_gib=WINDOWS_ROOT_GIB,
        partition_style="GPT",
        drive_letters=["C"],
        system=True,
        identity=new_identity("GPT", seed_id),
    )


def bootable(content: DiskContent | None) -> bool:
    """A Windows system volume Windows can start from: a system partition (EFI or System
    Reserved), C:, and its data consistent (a torn system volume is what the test is for)."""
    if content is None:
        return False
    system = any(
        not p.drive_letter and p.file_system in {"FAT32", "NTFS"} for p in content.partitions
    )
    has_c = any(p.drive_letter.upper() == "C" for p in content.partitions)
    return system and has_c and content.consistent


def _boot_test_status(world: World, clone: BootTestInstance) -> dict[str, Any]:
    now = world.clock.now()
    if clone.boots_at is not None and now >= clone.boots_at:
        status = "ok"
    elif clone.started_at is not None and (now - clone.started_at).total_seconds() >= (
        world.timing.helper_boot_seconds
    ):
        status = "impaired"  # no boot within the time a boot takes: the OS does not answer
    else:
        status = "initializing"
    detail = {"ok": "passed", "impaired": "failed", "initializing": "initializing"}[status]
    return {"Details": [{"Name": "reachability", "Status": detail}], "Status": status}


def _stop_instances(world: World, fleet: Fleet, original: Method) -> Method:
    def stop_instances(backend: Any, instance_ids: list[str], *args: Any, **kwargs: Any) -> Any:
        world.settle()
        result = original(backend, instance_ids, *args, **kwargs)
        now = world.clock.now()
        for instance_id in instance_ids:
            clone = fleet.boot_tests.get(instance_id)
            if clone is not None and clone.runs and clone.runs[-1][1] is None:
                clone.runs[-1][1] = now
                clone.boots_at = None
            managed = world.managed.get(instance_id)
            if managed is not None:
                managed.ping_status = "ConnectionLost"
        return result

    return stop_instances


def _start_instances(world: World, fleet: Fleet, original: Method) -> Method:
    def start_instances(backend: Any, instance_ids: list[str], *args: Any, **kwargs: Any) -> Any:
        world.settle()
        for instance_id in instance_ids:
            instance = backend.get_instance(instance_id)
            if instance.root_device_name not in instance.block_device_mapping:
                # An EBS-backed instance needs its root device to start. The code: check.
                raise EC2ClientError(
                    "InvalidBlockDeviceMapping",
                    f"The instance '{instance_id}' has no volume at its root device "
                    f"{instance.root_device_name}.",
                )
        result = original(backend, instance_ids, *args, **kwargs)
        now = world.clock.now()
        for instance_id in instance_ids:
            clone = fleet.boot_tests.get(instance_id)
            if clone is None:
                continue
            instance = backend.get_instance(instance_id)
            root = instance.block_device_mapping[instance.root_device_name].volume_id
            clone.runs.append([now, None])
            clone.started_at = now
            clone.swapped = True
            never = fleet.boot_tests_never_online > 0
            if never:
                fleet.boot_tests_never_online -= 1
            boots = bootable(world.volume_contents.get(root)) and not never
            clone.boots_at = now + seconds(world.timing.helper_boot_seconds) if boots else None
            if clone.boots_at is not None and clone.reaches_ssm:
                world.happenings.append(_CloneComesOnline(world, clone, clone.boots_at))
        return result

    return start_instances


class _CloneComesOnline:
    """The clone's own SSM agent registers under the throwaway instance's ID once it booted."""

    def __init__(self, world: World, clone: BootTestInstance, at: datetime) -> None:
        self.world, self.clone, self.at = world, clone, at
        self.done = False

    def next_due(self) -> datetime | None:
        if self.done or self.clone.terminated_at is not None or self.clone.boots_at != self.at:
            return None
        return self.at

    def happen(self, at: datetime) -> None:
        self.done = True
        self.world.managed[self.clone.instance_id] = ManagedInstance(
            instance_id=self.clone.instance_id,
            ping_status="Online",
            platform_type="Windows",
            platform_name="Microsoft Windows Server 2022 Datacenter",
            platform_version="10.0.20348",
            computer_name="clone of the source",
            ip_address="10.80.0.20",
        )


def reaches_ssm(backend: Any, subnet: Any, region: str) -> bool:
    """Whether an instance launched in the subnet can reach SSM, without which its agent never
    registers (never Online): interface endpoints for ssm, ssmmessages and ec2messages in the
    VPC with private DNS (Systems Manager User Guide, "Improve the security of EC2 instances
    by using VPC endpoints for Systems Manager"), or a route 0.0.0.0/0 of the subnet's route
    table (its own, else the VPC's main one) to a NAT gateway, or to an internet gateway with
    a public IP given at launch (VPC User Guide, "Configure route tables")."""
    needed = {f"com.amazonaws.{region}.{s}" for s in ("ssm", "ssmmessages", "ec2messages")}
    endpoints = {
        e.service_name
        for e in backend.vpc_end_points.values()
        if e.vpc_id == subnet.vpc_id
        and str(e.vpc_endpoint_type).lower() == "interface"
        and e.private_dns_enabled
        and str(e.state).lower() == "available"
    }
    if needed <= endpoints:
        return True
    tables = backend.route_tables.values()
    own = [t for t in tables if subnet.id in t._associations.values()]
    main = [t for t in tables if t.vpc_id == subnet.vpc_id and t.main_association_id]
    public_ip = str(subnet.map_public_ip_on_launch).lower() == "true"
    for route in (own or main)[0].routes if (own or main) else []:
        if route.destination_cidr_block != "0.0.0.0/0":
            continue
        # A private NAT gateway reaches other networks, not the internet (VPC User Guide,
        # "NAT gateways": connectivity types).
        nat = route.nat_gateway
        if nat is not None and nat.connectivity_type == "public" and nat.state == "available":
            return True
        if str(getattr(route.gateway, "id", "")).startswith("igw-") and public_ip:
            return True
    return False


def _reservation_of(backend: Any, instance_id: str) -> Any:
    for reservation in backend.reservations.values():
        if any(i.id == instance_id for i in reservation.instances):
            return reservation
    raise EC2ClientError("InvalidInstanceID.NotFound", f"{instance_id} is gone")


def _fingerprint(image_id: str, kwargs: dict[str, Any]) -> str:
    keys = ("instance_type", "subnet_id", "security_group_ids", "iam_instance_profile_arn")
    chosen = {k: kwargs.get(k) for k in keys}
    return hashlib.sha256(json.dumps([image_id, chosen], default=str).encode()).hexdigest()


def _boot_windows(world: World, instance: Any) -> str:
    """The helper's own Windows, with its C: on the root volume (Windows Server 2022); the
    root volume's ID."""
    host = WindowsHost(instance.id, world.content_of_volume)
    root = instance.block_device_mapping[instance.root_device_name]
    seed_id = uuid.uuid5(_IDENTITY_SEEDS, instance.id)
    world.volume_contents[root.volume_id] = windows_disk(
        size_gib=30,
        partition_style="GPT",
        drive_letters=["C"],
        system=True,
        identity=new_identity("GPT", seed_id),
        unlettered=0,
    )
    host.add_disk(root.volume_id, own=True, system=True)
    world.hosts[instance.id] = host
    for record in world.attachments:
        if record.instance_id == instance.id:
            record.appeared = True
    return str(root.volume_id)


class _ComesOnline:
    """The SSM agent registers once Windows has booted (the modelled boot time)."""

    def __init__(self, world: World, fleet: Fleet, instance_id: str) -> None:
        self.world, self.fleet, self.instance_id = world, fleet, instance_id
        self.done = False

    def next_due(self) -> datetime | None:
        helper = self.fleet.launched[self.instance_id]
        if self.done or helper.online_at is None or helper.terminated_at is not None:
            return None
        return helper.online_at

    def happen(self, at: datetime) -> None:
        self.done = True
        host = self.world.hosts[self.instance_id]
        self.world.managed[self.instance_id] = ManagedInstance(
            instance_id=self.instance_id,
            ping_status="Online",
            platform_type="Windows",
            platform_name="Microsoft Windows Server 2022 Datacenter",
            platform_version="10.0.20348",
            computer_name=host.computer_name,
            ip_address="10.80.0.10",
        )


def state_changed(world: World, instance_id: str, state: str, at: datetime) -> None:
    """EC2's "EC2 Instance State-change Notification" for the instance's new state: source
    aws.ec2, `detail.instance-id`, `detail.state`, no tags (EC2 User Guide, "State change
    events for Amazon EC2 instances"). EC2's own event: never faulted."""
    world.queue_event(
        at + seconds(world.timing.event_delivery_seconds),
        base_event(
            world,
            STATE_CHANGE,
            at,
            [arn(world, "instance", instance_id)],
            {"instance-id": instance_id, "state": state},
        ),
        faultable=False,
    )


def _terminate_instances(world: World, fleet: Fleet, original: Method) -> Method:
    def terminate_instances(
        backend: Any, instance_ids: list[str], *args: Any, **kwargs: Any
    ) -> Any:
        world.settle()
        # EC2 detaches the instance's volumes and deletes those marked DeleteOnTermination
        # (its root volume) as part of the termination, not through DetachVolume's waits.
        with world.instantly():
            result = original(backend, instance_ids, *args, **kwargs)
        for instance_id in instance_ids:
            helper = fleet.launched.get(instance_id)
            if helper is not None and helper.terminated_at is None:
                helper.terminated_at = world.clock.now()
            clone = fleet.boot_tests.get(instance_id)
            if clone is not None and clone.terminated_at is None:
                clone.terminated_at = world.clock.now()
                if clone.runs and clone.runs[-1][1] is None:
                    clone.runs[-1][1] = clone.terminated_at
            managed = world.managed.get(instance_id)
            if managed is not None:
                managed.ping_status = "ConnectionLost"
            for happening in world.happenings:  # its agent's commands die with it
                if getattr(happening, "instance_id", None) == instance_id:
                    lose_command = getattr(happening, "lose", None)
                    if lose_command is not None:
                        lose_command(world.clock.now())
            # moto ends the termination at once; EC2's two events follow each other here.
            for state in ("shutting-down", "terminated"):
                state_changed(world, instance_id, state, world.clock.now())
        return result

    return terminate_instances
