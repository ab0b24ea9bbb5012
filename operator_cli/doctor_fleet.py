"""The pre-flight of HelperMode=fleet: can the workflow launch a helper that reaches SSM?

Read calls only. The image is judged by the workflow's own check (vss_restore/fleet.py), so
doctor and a night's launch cannot disagree about it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from operator_cli.account import Account
from operator_cli.doctor_check import Check
from vss_restore import tags, turns
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.ssm import Ssm
from vss_restore.errors import HelperImageNotUsable
from vss_restore.fleet import helper_image
from vss_restore.logic.fleet import over_age
from vss_restore.settings import Settings

# The endpoints an SSM agent calls (Systems Manager User Guide, "Improve the security of EC2
# instances by using VPC endpoints for Systems Manager"): ssm, ssmmessages and ec2messages,
# each an interface endpoint whose private DNS makes the agent's usual names resolve to it.
SSM_ENDPOINTS = ("ssm", "ssmmessages", "ec2messages")
# Service Quotas: Amazon EC2 "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z)
# instances", counted in vCPUs (EC2 User Guide, "Amazon EC2 service quotas").
VCPU_QUOTA = ("ec2", "L-1216C47A")
ANYWHERE = "0.0.0.0/0"


def fleet_settings(parameters: Mapping[str, str]) -> Settings:
    """The stack's fleet parameters, as the workflow reads them (defaults where absent)."""
    return Settings(
        helper_mode="fleet",
        helper_subnet_ids=tuple(
            s.strip() for s in parameters.get("HelperSubnetIds", "").split(",") if s.strip()
        ),
        helper_image=parameters.get("HelperImage") or Settings.helper_image,
        helper_instance_type=parameters.get("HelperInstanceType") or Settings.helper_instance_type,
        max_helpers=int(parameters.get("MaxHelpers") or Settings.max_helpers),
        helper_max_hours=int(parameters.get("HelperMaxHours") or Settings.helper_max_hours),
        max_wait_hours=int(parameters.get("MaxWaitHours") or Settings.max_wait_hours),
    )


def checks(
    account: Account, parameters: Mapping[str, str], outputs: Mapping[str, str], now: datetime
) -> list[Check]:
    settings = fleet_settings(parameters)
    vpc = parameters.get("HelperVpcId", "")
    subnets = _subnets(account, settings.helper_subnet_ids)
    found = [subnet_check(subnet_id, subnets.get(subnet_id), vpc) for subnet_id in _ids(settings)]
    usable = [s for s in subnets.values() if s.get("VpcId") == vpc]
    endpoints = _endpoints(account, vpc) if vpc else {}
    found += [_reach(account, subnet, endpoints) for subnet in usable]
    found.append(_image(account, settings))
    vcpus = _vcpus(account, settings.helper_instance_type)
    zones = sorted({str(s["AvailabilityZone"]) for s in usable})
    found.append(_offered(account, settings.helper_instance_type, zones))
    found.append(_security_group(account, outputs.get("HelperSecurityGroupId", "")))
    found.append(_quota(account, settings, vcpus))
    found += _running(account, settings, outputs.get("LedgerTable", ""), now)
    return found


def _ids(settings: Settings) -> Sequence[str]:
    return settings.helper_subnet_ids or [""]


def _subnets(account: Account, subnet_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not subnet_ids:
        return {}
    # A filter, not SubnetIds: a subnet that no longer exists is a finding, not an error.
    found = account.ec2.describe_subnets(
        Filters=[{"Name": "subnet-id", "Values": list(subnet_ids)}]
    )["Subnets"]
    return {str(s["SubnetId"]): dict(s) for s in found}


def subnet_check(subnet_id: str, subnet: Mapping[str, Any] | None, vpc: str) -> Check:
    if not subnet_id:
        return Check(
            "helper subnets",
            False,
            "HelperSubnetIds is empty: no helper can be launched",
            "deploy with HelperSubnetIds=subnet-...,subnet-... (private, of HelperVpcId)",
        )
    name = f"subnet {subnet_id}"
    if subnet is None:
        return Check(
            name, False, "does not exist here", "give HelperSubnetIds subnets of this Region"
        )
    if subnet.get("VpcId") != vpc:
        return Check(
            name,
            False,
            f"is in {subnet.get('VpcId')}, not HelperVpcId {vpc or '(empty)'}",
            "deploy with HelperVpcId the VPC of every subnet in HelperSubnetIds",
        )
    return Check(name, True, f"in {vpc}, {subnet.get('AvailabilityZone')}")


def _endpoints(account: Account, vpc: str) -> dict[str, dict[str, Any]]:
    """The VPC's available interface endpoints of SSM's three services, by short name."""
    names = [f"com.amazonaws.{account.region}.{short}" for short in SSM_ENDPOINTS]
    found = account.ec2.describe_vpc_endpoints(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc]},
            {"Name": "service-name", "Values": names},
            {"Name": "vpc-endpoint-type", "Values": ["Interface"]},
        ]
    )["VpcEndpoints"]
    return {
        str(e["ServiceName"]).rsplit(".", 1)[-1]: dict(e)
        for e in found
        if str(e.get("State", "")).lower() == "available"
    }


def _reach(account: Account, subnet: Mapping[str, Any], endpoints: Mapping[str, Any]) -> Check:
    """How the subnet's helpers reach SSM: the three endpoints with private DNS, or the
    internet through a NAT gateway (or an internet gateway and a public IP at launch)."""
    subnet_id = str(subnet["SubnetId"])
    name = f"SSM from {subnet_id}"
    private = [s for s in SSM_ENDPOINTS if endpoints.get(s, {}).get("PrivateDnsEnabled")]
    if len(private) == len(SSM_ENDPOINTS):
        return Check(name, True, "VPC endpoints ssm, ssmmessages, ec2messages (private DNS)")
    route = _default_route(account, subnet)
    if route.get("NatGatewayId") and _public_nat(account, str(route["NatGatewayId"])):
        return Check(name, True, f"{ANYWHERE} through NAT gateway {route['NatGatewayId']}")
    gateway = str(route.get("GatewayId", ""))
    if gateway.startswith("igw-") and subnet.get("MapPublicIpOnLaunch"):
        return Check(name, True, f"{ANYWHERE} through {gateway}, a public IP at launch")
    missing = [s for s in SSM_ENDPOINTS if s not in private]
    why = (
        f"{ANYWHERE} goes to {gateway}, but the subnet gives no public IP at launch"
        if gateway.startswith("igw-")
        else f"no route {ANYWHERE} to a public NAT gateway"
    )
    return Check(
        name,
        False,
        f"no VPC endpoint with private DNS for {', '.join(missing)}, and {why}: "
        "a helper launched here never comes SSM Online",
        f"create interface endpoints com.amazonaws.{account.region}.{{{','.join(missing)}}} "
        "in the VPC with private DNS (their security group open to HTTPS from the subnet), "
        f"or route {ANYWHERE} of the subnet's route table to a NAT gateway",
    )


def _public_nat(account: Account, nat_id: str) -> bool:
    """A public NAT gateway, available: a private one reaches other networks, not the
    internet (VPC User Guide, "NAT gateways", connectivity types)."""
    found = account.ec2.describe_nat_gateways(
        Filters=[{"Name": "nat-gateway-id", "Values": [nat_id]}]
    )["NatGateways"]
    return any(
        n.get("ConnectivityType", "public") == "public" and n.get("State") == "available"
        for n in found
    )


def _default_route(account: Account, subnet: Mapping[str, Any]) -> dict[str, Any]:
    """The active 0.0.0.0/0 route of the subnet's route table: its own, else the VPC's main
    one (VPC User Guide, "Configure route tables": a subnet not associated uses the main)."""
    tables = (
        account.ec2.describe_route_tables(
            Filters=[{"Name": "association.subnet-id", "Values": [str(subnet["SubnetId"])]}]
        )["RouteTables"]
        or account.ec2.describe_route_tables(
            Filters=[
                {"Name": "vpc-id", "Values": [str(subnet["VpcId"])]},
                {"Name": "association.main", "Values": ["true"]},
            ]
        )["RouteTables"]
    )
    for table in tables:
        for route in table.get("Routes", []):
            if route.get("DestinationCidrBlock") == ANYWHERE and route.get("State") == "active":
                return dict(route)
    return {}


def _image(account: Account, settings: Settings) -> Check:
    try:
        image_id = helper_image(Ec2(account.ec2), Ssm(account.ssm), settings)
    except HelperImageNotUsable as exc:
        return Check(
            "helper image",
            False,
            str(exc),
            "deploy with HelperImage an AWS Windows Server AMI parameter (the default) or "
            f"an x86_64 Windows AMI ID that {settings.helper_instance_type} runs",
        )
    named = "" if image_id == settings.helper_image else f" names {image_id}"
    return Check(
        "helper image",
        True,
        f"{settings.helper_image}{named}: Windows, runs on {settings.helper_instance_type}",
    )


def _vcpus(account: Account, instance_type: str) -> int:
    try:
        found = account.ec2.describe_instance_types(
            InstanceTypes=[instance_type]  # type: ignore[list-item]
        )
    except ClientError:
        return 0  # an unknown type: the image check says so
    return sum(int(t["VCpuInfo"]["DefaultVCpus"]) for t in found["InstanceTypes"])


def _offered(account: Account, instance_type: str, zones: Sequence[str]) -> Check:
    name = f"instance type {instance_type}"
    if not zones:
        return Check(name, False, "no usable subnet to launch into", "fix the subnets above")
    offerings = account.ec2.describe_instance_type_offerings(
        LocationType="availability-zone",
        Filters=[
            {"Name": "instance-type", "Values": [instance_type]},
            {"Name": "location", "Values": list(zones)},
        ],
    )["InstanceTypeOfferings"]
    offered = {str(o["Location"]) for o in offerings}
    lacking = [z for z in zones if z not in offered]
    if lacking:
        return Check(
            name,
            False,
            f"not offered in {', '.join(lacking)}: launches there fail (Unsupported)",
            "choose HelperSubnetIds in zones that offer it, or another HelperInstanceType",
        )
    return Check(name, True, f"offered in {', '.join(zones)}")


def _security_group(account: Account, group_id: str) -> Check:
    name = "helper security group"
    if not group_id:
        return Check(
            name, False, "the stack has no output HelperSecurityGroupId", "deploy this version"
        )
    try:
        [group] = account.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    except ClientError as exc:
        return Check(name, False, f"{group_id}: {exc}", "deploy the stack again")
    inbound = group.get("IpPermissions", [])
    if inbound:
        rules = ", ".join(_rule(rule) for rule in inbound)
        return Check(
            name,
            False,
            f"{group_id} allows inbound {rules}: the helpers need none (SSM calls out)",
            f"aws ec2 revoke-security-group-ingress --group-id {group_id} "
            "--ip-permissions ... (each rule above)",
        )
    return Check(name, True, f"{group_id}: no inbound rule")


def _rule(rule: Mapping[str, Any]) -> str:
    ports = f"{rule.get('FromPort')}-{rule.get('ToPort')}" if "FromPort" in rule else "all ports"
    sources = [r.get("CidrIp", "") for r in rule.get("IpRanges", [])] + [
        g.get("GroupId", "") for g in rule.get("UserIdGroupPairs", [])
    ]
    return f"{rule.get('IpProtocol')} {ports} from {' '.join(sources) or '?'}"


def _quota(account: Account, settings: Settings, vcpus: int) -> Check:
    code = "/".join(VCPU_QUOTA)
    try:
        quota = account.service_quotas.get_service_quota(
            ServiceCode=VCPU_QUOTA[0], QuotaCode=VCPU_QUOTA[1]
        )["Quota"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return Check(
            "vCPU quota",
            False,
            f"not read: Service Quotas answered {error.get('Code')} for {code}",
            f"see Service Quotas, Amazon EC2, {VCPU_QUOTA[1]}: at least "
            f"{settings.max_helpers * vcpus} vCPUs for the helpers",
        )
    return quota_check(float(quota.get("Value", 0)), settings, vcpus)


def quota_check(quota: float, settings: Settings, vcpus: int) -> Check:
    """Whether MaxHelpers helpers of the type fit the On-Demand Standard vCPU quota (which
    every other On-Demand standard instance of the account shares)."""
    needed = settings.max_helpers * vcpus
    found = (
        f"{needed} vCPUs for {settings.max_helpers} {settings.helper_instance_type} "
        f"(MaxHelpers), quota {quota:g}"
    )
    if needed > quota:
        return Check(
            "vCPU quota",
            False,
            found,
            f"request an increase of {VCPU_QUOTA[1]} in Service Quotas, or lower MaxHelpers",
        )
    return Check("vCPU quota", True, found + " (shared with the account's other instances)")


def _running(account: Account, settings: Settings, table: str, now: datetime) -> list[Check]:
    """Each helper of ours not terminated, with its age. One past HelperMaxHours drains while
    restores hold or wait for its turns (WARN); one with none left, or past HelperMaxHours and
    the turn lease, was not retired (the retirement is not running, or it is refused)."""
    pages = account.ec2.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": f"tag:{tags.RESOURCE}", "Values": [tags.LAUNCHED_HELPER]},
            {"Name": f"tag:{tags.HELPER}", "Values": [tags.HELPER_VALUE]},
            {
                "Name": "instance-state-name",
                "Values": ["pending", "running", "stopping", "stopped"],
            },
        ]
    )
    helpers = [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
    if not helpers:
        return [Check("running helpers", True, "none (they are launched when restores wait)")]
    return [_helper_check(account, settings, table, instance, now) for instance in helpers]


def _helper_check(
    account: Account, settings: Settings, table: str, instance: Mapping[str, Any], now: datetime
) -> Check:
    seconds = (now - instance["LaunchTime"]).total_seconds()
    instance_id = str(instance["InstanceId"])
    said = f"{instance['State']['Name']}, {seconds / 3600:.1f} h old"
    name = f"helper {instance_id}"
    if not over_age(seconds, settings.helper_max_hours):
        return Check(name, True, said)
    older = f"{said}, older than HelperMaxHours {settings.helper_max_hours}"
    fix = (
        "see the RetireHelpers function's logs; aws ec2 terminate-instances "
        f"--instance-ids {instance_id} once no restore uses it"
    )
    if seconds > settings.helper_max_hours * 3600 + turns.TURN_LEASE_SECONDS:
        lease = turns.TURN_LEASE_SECONDS // 3600
        return Check(name, False, f"{older} and the {lease} h turn lease", fix)
    ledger = Ledger(table, client=account.dynamodb)
    busy = turns.load(ledger, instance_id, max_wait_seconds=settings.max_wait_hours * 3600)
    if busy:
        return Check(
            name,
            True,
            f"{older}: draining, {busy} restore(s) holding or waiting for its turns (it takes"
            " no new work and is terminated once they are done)",
            "nothing, unless it stays: see the RetireHelpers function's logs",
            warn=True,
        )
    return Check(name, False, older, fix)
