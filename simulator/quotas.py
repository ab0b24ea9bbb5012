"""EC2's On-Demand vCPU quota, as RunInstances enforces it and Service Quotas reports it.

- The quota "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", Service
  Quotas code ec2/L-1216C47A: EC2 User Guide, "On-Demand Instance quotas". It is counted in
  vCPUs of the account's running On-Demand instances of those families, per account and
  Region; each instance type counts its default vCPUs (the vCPU column of "Amazon EC2 instance
  types": here moto's instance type data, `VCpuInfo.DefaultVCpus`, e.g. t3.large and m6i.large
  2 each). Pending and running instances count; stopped and terminated ones do not.
- RunInstances that would go beyond it is refused as a whole: `VcpuLimitExceeded` (EC2 API
  Reference, "Error codes for the Amazon EC2 API"), with the message AWS gives (quoted as
  users have reported it: "You have requested more vCPU capacity than your current vCPU limit
  of 32 allows for the instance bucket that the specified instance type belongs to. Please
  visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.").
- Service Quotas GetServiceQuota for ec2/L-1216C47A answers the same value (Service Quotas API
  Reference, "GetServiceQuota"); another EC2 quota code is not modelled and answers
  NoSuchResourceException, as AWS does for a code it does not know. moto's own VPC quotas stay.
- The value is the account's (Service Quotas' "applied" value): it differs from account to
  account and AWS raises it with use. The default is Service Quotas' "AWS default quota value"
  for L-1216C47A, 5 vCPUs, what a new account may be given (accounts have reported 1, 5, 16,
  32 and 640): two 2-vCPU instances and one helper fit, five helpers do not. A scenario whose
  own instances already run more has exactly what they run (the tightest quota that account
  can have): any launch beyond it is refused. A scenario sets its own in "quotas"
  (`on_demand_standard_vcpus`); the scenario's instances must then fit in it.
- Not modelled: the other On-Demand quotas (G, P, X, ... families: their launches are neither
  counted nor refused), Spot quotas, CpuOptions lowering an instance's vCPUs, a MinCount below
  MaxCount launching fewer instances rather than being refused.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moto.core.exceptions import JsonRESTError
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.instance_types import INSTANCE_TYPES
from moto.ec2.models.instances import InstanceBackend
from moto.servicequotas.models import ServiceQuotasBackend

from simulator.patching import Patches

if TYPE_CHECKING:
    from simulator.world import World

STANDARD_VCPUS = ("ec2", "L-1216C47A")
STANDARD_VCPUS_NAME = "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"
DEFAULT_STANDARD_VCPUS = 5.0
# The families the quota covers, as the instance type's name starts (EC2 User Guide, "On-Demand
# Instance quotas"; the I family includes im4gn and is4gen). DL, F, G, Inf, P, Trn, VT, X, U
# (high memory), HPC and Mac instances have quotas of their own.
STANDARD_FAMILIES = frozenset("acdhimrtz") | {"im", "is"}
COUNTED_STATES = frozenset({"pending", "running"})
Method = Callable[..., Any]


def family(instance_type: str) -> str:
    """The letters before the generation: m6i.large -> m, is4gen.large -> is."""
    name = instance_type.split(".")[0].split("-")[0]
    letters = ""
    for character in name:
        if character.isdigit():
            break
        letters += character
    return letters


def is_standard(instance_type: str) -> bool:
    return family(instance_type) in STANDARD_FAMILIES


def vcpus(instance_type: str) -> int:
    return int(INSTANCE_TYPES[instance_type]["VCpuInfo"]["DefaultVCpus"])


def standard_vcpus_in_use(backend: Any) -> int:
    """The account's (one Region's) running and pending standard On-Demand vCPUs."""
    return sum(
        vcpus(instance.instance_type)
        for reservation in backend.reservations.values()
        for instance in reservation.instances
        if instance.state in COUNTED_STATES and is_standard(instance.instance_type)
    )


def account_default(backend: Any) -> float:
    """A scenario's quota when it sets none: a new account's, or, when the scenario's own
    instances already run more, exactly what they run (the account runs them: its quota was
    raised that far), so that any launch beyond is refused."""
    return max(DEFAULT_STANDARD_VCPUS, float(standard_vcpus_in_use(backend)))


class NoSuchQuota(JsonRESTError):
    def __init__(self) -> None:
        super().__init__("NoSuchResourceException", "The specified resource does not exist.")


def install(patches: Patches, world: "World") -> None:
    """Before helpers.install: the fleet's launch checks its client token before the quota."""
    patches.wrap(InstanceBackend, "run_instances", lambda original: _run_instances(world, original))
    patches.wrap(
        ServiceQuotasBackend,
        "get_service_quota",
        lambda original: _get_service_quota(world, original),
    )


def _run_instances(world: "World", original: Method) -> Method:
    def run_instances(backend: Any, image_id: str, count: int, *args: Any, **kwargs: Any) -> Any:
        instance_type = str(kwargs.get("instance_type") or "m1.small")  # moto's and EC2's
        if is_standard(instance_type) and instance_type in INSTANCE_TYPES:
            limit = world.standard_vcpu_quota
            asked = vcpus(instance_type) * int(count)
            if standard_vcpus_in_use(backend) + asked > limit:
                raise EC2ClientError(
                    "VcpuLimitExceeded",
                    f"You have requested more vCPU capacity than your current vCPU limit of"
                    f" {limit:g} allows for the instance bucket that the specified instance type"
                    " belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to"
                    " request an adjustment to this limit.",
                )
        return original(backend, image_id, count, *args, **kwargs)

    return run_instances


def _get_service_quota(world: "World", original: Method) -> Method:
    def get_service_quota(backend: Any, service_code: str, quota_code: str) -> Any:
        if service_code != STANDARD_VCPUS[0]:
            return original(backend, service_code, quota_code)
        if quota_code != STANDARD_VCPUS[1]:
            raise NoSuchQuota()
        return quota(world, backend.account_id, backend.region_name)

    return get_service_quota


def quota(world: "World", account_id: str, region: str) -> dict[str, Any]:
    """The quota as GetServiceQuota answers it (Service Quotas API Reference, "ServiceQuota"),
    with the usage metric Service Quotas names for it (AWS/Usage ResourceCount)."""
    code = STANDARD_VCPUS[1]
    return {
        "ServiceCode": "ec2",
        "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
        "QuotaArn": f"arn:aws:servicequotas:{region}:{account_id}:ec2/{code}",
        "QuotaCode": code,
        "QuotaName": STANDARD_VCPUS_NAME,
        "Value": float(world.standard_vcpu_quota),
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
        "UsageMetric": {
            "MetricNamespace": "AWS/Usage",
            "MetricName": "ResourceCount",
            "MetricDimensions": {
                "Class": "Standard/OnDemand",
                "Resource": "vCPU",
                "Service": "EC2",
                "Type": "Resource",
            },
            "MetricStatisticRecommendation": "Maximum",
        },
    }
