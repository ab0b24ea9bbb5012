"""Issue #15 item 3: the boot test of system drives (BootTest=Weekly), as IAM judges it.

The legitimate calls (a launch from the source's own image into the boot test's subnets and
security group, tagged at launch; the stop, the root swap, the start, the termination; the
result on the consistent snapshot) are allowed to the boot test's roles; each request an
attacker holding those roles would try instead (stop or terminate a production server,
detach its root, attach the clone's root elsewhere, launch outside the cage, tag another
snapshot) is refused by the simulator's evaluator over the synthesized template.
"""

from dataclasses import replace

import pytest

from tests.security import iam
from tests.security.iam import Principal, Request, Resource, Stack, allows
from vss_restore import tags
from vss_restore.logic import boot_test
from vss_restore.settings import Settings

ACCOUNT, REGION = iam.ACCOUNT, iam.REGION
OUR_SUBNETS = ("subnet-0aaa1111bbb22233a", "subnet-0aaa1111bbb22233b")
OUR_VPC = "vpc-0aaa1111bbb222333"
ENDPOINTS_GROUP = "sg-0aaa1111bbb222334"
BOOT_TEST = {
    "HelperMode": "fleet",
    "HelperSubnetIds": ",".join(OUR_SUBNETS),
    "HelperVpcId": OUR_VPC,
    "BootTest": "Weekly",
    "BootTestEndpointSecurityGroupId": ENDPOINTS_GROUP,
}
# A customer's own Windows image (its golden AMI): the source's, whoever owns it.
SOURCES_IMAGE = "ami-0123456789abcdef0"
STEP = "BootTestFunctionRole"
SWEEP = "ReconcileFunctionRole"  # removes what a lost boot test left
CLONE = {tags.RESOURCE: tags.BOOT_TEST_INSTANCE}
CLONE_ROOT = {tags.RESOURCE: tags.BOOT_TEST_ROOT}
PRODUCTION = {"Name": "web1", "ConsistentSnapshot": "WindowsVSS"}


def _ec2(kind: str, name: str, keys: dict[str, str] | None = None, **found: str) -> Resource:
    account = "" if kind in {"image", "snapshot"} else ACCOUNT
    return Resource(f"arn:aws:ec2:{REGION}:{account}:{kind}/{name}", found, keys or {})


def _request_tags(found: dict[str, str]) -> dict[str, object]:
    return {"aws:TagKeys": sorted(found), **{f"aws:RequestTag/{k}": v for k, v in found.items()}}


class Launch:
    """The boot test's RunInstances as AWS authorizes it."""

    def __init__(self, stack: Stack) -> None:
        self.image = _ec2(
            "image", SOURCES_IMAGE, {"ec2:Owner": ACCOUNT, "ec2:RootDeviceType": "ebs"}
        )
        self.instance_keys = {
            "ec2:InstanceProfile": stack.get_att("HelperInstanceProfile", "Arn"),
            "ec2:InstanceType": "m6i.large",
            "ec2:MetadataHttpTokens": "required",
        }
        self.subnet = OUR_SUBNETS[0]
        self.vpc = OUR_VPC
        self.security_group = stack.ref("BootTestSecurityGroup")
        self.root_encrypted = "true"
        self.tags = {tags.RESOURCE: tags.BOOT_TEST_INSTANCE, tags.EXECUTION: "arn:x"}

    def requests(self) -> list[Request]:
        context = _request_tags(self.tags)
        tagging = {**context, "ec2:CreateAction": "RunInstances"}
        return [
            Request(
                "ec2:RunInstances",
                [
                    self.image,
                    _ec2("instance", "*", self.instance_keys),
                    _ec2(
                        "network-interface",
                        "*",
                        {"ec2:Vpc": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{self.vpc}"},
                    ),
                    _ec2("security-group", self.security_group),
                    _ec2("subnet", self.subnet, {"ec2:SubnetID": self.subnet}),
                    _ec2("volume", "*", {"ec2:Encrypted": self.root_encrypted}),
                ],
                context,
            ),
            Request("ec2:CreateTags", [_ec2("instance", "*")], tagging),
            Request("ec2:CreateTags", [_ec2("volume", "*")], tagging),
        ]


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack(BOOT_TEST)


@pytest.fixture(scope="module")
def principals(stack: Stack) -> dict[str, Principal]:
    return iam.principals(stack)


def _who(principals: dict[str, Principal], requests: list[Request]) -> set[str]:
    return {
        name
        for name, principal in principals.items()
        if all(allows(principal.statements, request) for request in requests)
    }


def test_only_the_boot_test_step_launches_the_clone(
    principals: dict[str, Principal], stack: Stack
) -> None:
    assert _who(principals, Launch(stack).requests()) == {STEP}


def _another_subnet(launch: Launch) -> None:
    launch.subnet = "subnet-0fff1111bbb222333"


def _another_vpc(launch: Launch) -> None:
    launch.vpc = "vpc-0fff1111bbb222333"


def _the_helpers_group(launch: Launch) -> None:
    launch.security_group = "sg-0eee1111bbb222333"  # e.g. the fleet's, egress to anywhere


def _another_profile(launch: Launch) -> None:
    launch.instance_keys["ec2:InstanceProfile"] = (
        f"arn:aws:iam::{ACCOUNT}:instance-profile/AdminProfile"
    )


def _no_profile(launch: Launch) -> None:
    del launch.instance_keys["ec2:InstanceProfile"]


def _another_type(launch: Launch) -> None:
    launch.instance_keys["ec2:InstanceType"] = "p5.48xlarge"


def _imdsv1(launch: Launch) -> None:
    launch.instance_keys["ec2:MetadataHttpTokens"] = "optional"


def _unencrypted_root(launch: Launch) -> None:
    launch.root_encrypted = "false"


def _untagged(launch: Launch) -> None:
    launch.tags = {}


def _as_a_helper(launch: Launch) -> None:
    launch.tags = {tags.HELPER: tags.HELPER_VALUE, tags.RESOURCE: tags.LAUNCHED_HELPER}


def _instance_store_image(launch: Launch) -> None:
    launch.image = _ec2(
        "image", SOURCES_IMAGE, {"ec2:Owner": ACCOUNT, "ec2:RootDeviceType": "instance-store"}
    )


ATTACKS = {
    "a subnet not the boot test's": _another_subnet,
    "a network interface in another VPC": _another_vpc,
    "a security group other than the boot test's": _the_helpers_group,
    "another instance profile": _another_profile,
    "no instance profile": _no_profile,
    "another instance type": _another_type,
    "IMDSv1 allowed": _imdsv1,
    "an unencrypted launch root": _unencrypted_root,
    "no tags at launch": _untagged,
    "tagged as a helper of the fleet": _as_a_helper,
    "an instance-store image": _instance_store_image,
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_launch_outside_the_cage_is_refused(
    principals: dict[str, Principal], stack: Stack, attack: str
) -> None:
    launch = Launch(stack)
    ATTACKS[attack](launch)
    assert not _who(principals, launch.requests()), attack


def _on_instance(action: str, found: dict[str, str]) -> Request:
    return Request(action, [_ec2("instance", "i-0123456789abcdef0", **found)])


@pytest.mark.parametrize("action", ["ec2:StopInstances", "ec2:StartInstances"])
def test_only_the_clone_is_stopped_or_started_and_only_by_the_step(
    principals: dict[str, Principal], action: str
) -> None:
    assert _who(principals, [_on_instance(action, CLONE)]) == {STEP}
    for found in (PRODUCTION, {}, CLONE_ROOT, {tags.HELPER: tags.HELPER_VALUE}):
        assert not _who(principals, [_on_instance(action, found)]), (action, found)


def test_only_the_clone_is_terminated_by_the_boot_test(principals: dict[str, Principal]) -> None:
    # The step, and the reconciliation when the step's execution was lost.
    assert _who(principals, [_on_instance("ec2:TerminateInstances", CLONE)]) == {STEP, SWEEP}
    assert not _who(principals, [_on_instance("ec2:TerminateInstances", PRODUCTION)])


@pytest.mark.parametrize(
    "found",
    [
        PRODUCTION,
        {},
        CLONE_ROOT,  # the volume's tag on an instance: not the clone
        {tags.HELPER: tags.HELPER_VALUE, tags.RESOURCE: tags.LAUNCHED_HELPER},
        {tags.RESOURCE: tags.TEMPORARY_VOLUME},
        {"vss-restore:resource ": tags.BOOT_TEST_INSTANCE},  # a lookalike key
        {tags.RESOURCE: "boot-test-instance-x"},  # a lookalike value
    ],
    ids=["production", "untagged", "root-tag", "helper", "temporary", "key-lookalike", "value"],
)
def test_the_sweep_terminates_nothing_but_the_clone(
    principals: dict[str, Principal], found: dict[str, str]
) -> None:
    assert not _who(principals, [_on_instance("ec2:TerminateInstances", found)]) & {SWEEP}


def test_the_sweep_deletes_the_boot_tests_volumes_only(principals: dict[str, Principal]) -> None:
    for found in (CLONE, CLONE_ROOT):
        request = Request("ec2:DeleteVolume", [_ec2("volume", "vol-0123456789abcdef0", **found)])
        assert SWEEP in _who(principals, [request]), found
    # DeleteOrphanVolumes is false in this stack: not even our temporary volumes.
    for found in (PRODUCTION, {}, {tags.RESOURCE: tags.TEMPORARY_VOLUME}, {tags.HELPER: "true"}):
        request = Request("ec2:DeleteVolume", [_ec2("volume", "vol-0123456789abcdef0", **found)])
        assert SWEEP not in _who(principals, [request]), found
    # Nor does it stop, start, detach or attach anything of the boot test.
    for action in ("ec2:StopInstances", "ec2:StartInstances"):
        assert SWEEP not in _who(principals, [_on_instance(action, CLONE)])
    for action, volume in (("ec2:DetachVolume", CLONE), ("ec2:AttachVolume", CLONE_ROOT)):
        assert SWEEP not in _who(principals, [_volume_call(action, CLONE, volume)])


def _volume_call(action: str, instance: dict[str, str], volume: dict[str, str]) -> Request:
    return Request(
        action,
        [
            _ec2("instance", "i-0123456789abcdef0", **instance),
            _ec2("volume", "vol-0123456789abcdef0", **volume),
        ],
    )


def test_the_swap_is_allowed_on_the_clone_only(principals: dict[str, Principal]) -> None:
    assert _who(principals, [_volume_call("ec2:DetachVolume", CLONE, CLONE)]) == {STEP}
    assert _who(principals, [_volume_call("ec2:AttachVolume", CLONE, CLONE_ROOT)]) == {STEP}


@pytest.mark.parametrize(
    ("action", "instance", "volume"),
    [
        ("ec2:DetachVolume", PRODUCTION, {}),  # a production server's root
        ("ec2:DetachVolume", PRODUCTION, CLONE),  # a lookalike tag on production's volume
        ("ec2:DetachVolume", CLONE, {}),  # something else attached to the clone
        ("ec2:AttachVolume", PRODUCTION, CLONE_ROOT),  # the clone's root onto production
        ("ec2:AttachVolume", CLONE, {}),  # a production volume onto the clone
        ("ec2:AttachVolume", CLONE, {tags.RESOURCE: tags.TEMPORARY_VOLUME}),
    ],
    ids=[
        "detach-production-root",
        "detach-from-production-lookalike",
        "detach-untagged-from-clone",
        "attach-clone-root-to-production",
        "attach-production-volume-to-clone",
        "attach-temporary-volume-to-clone",
    ],
)
def test_no_role_swaps_anything_of_production_through_the_boot_test(
    principals: dict[str, Principal], action: str, instance: dict[str, str], volume: dict[str, str]
) -> None:
    allowed = _who(principals, [_volume_call(action, instance, volume)])
    assert not allowed & {STEP}, allowed


def test_only_the_boot_tests_volumes_are_deleted_by_it(principals: dict[str, Principal]) -> None:
    for found in (CLONE, CLONE_ROOT):
        request = Request("ec2:DeleteVolume", [_ec2("volume", "vol-0123456789abcdef0", **found)])
        assert _who(principals, [request]) >= {STEP}
    for found in (PRODUCTION, {}, {tags.RESOURCE: tags.TEMPORARY_VOLUME}):
        request = Request("ec2:DeleteVolume", [_ec2("volume", "vol-0123456789abcdef0", **found)])
        assert not _who(principals, [request]) & {STEP}, found


def _root_from(snapshot_tags: dict[str, str], root_tags: dict[str, str]) -> Request:
    return Request(
        "ec2:CreateVolume",
        [
            _ec2("volume", "*"),
            _ec2("snapshot", "snap-0123456789abcdef0", {"ec2:Owner": ACCOUNT}, **snapshot_tags),
        ],
        _request_tags(root_tags),
    )


def test_the_clones_root_comes_from_a_consistent_snapshot_only(
    principals: dict[str, Principal],
) -> None:
    consistent = {tags.RESOURCE: tags.CONSISTENT_SNAPSHOT}
    assert STEP in _who(principals, [_root_from(consistent, CLONE_ROOT)])
    backup = {"ConsistentSnapshot": "WindowsVSS", tags.INSTANCE_ID: "i-0123456789abcdef0"}
    assert STEP not in _who(principals, [_root_from(backup, CLONE_ROOT)])
    assert STEP not in _who(principals, [_root_from(consistent, {})])


def _tagging(snapshot_tags: dict[str, str], keys: list[str]) -> Request:
    return Request(
        "ec2:CreateTags",
        [_ec2("snapshot", "snap-0123456789abcdef0", **snapshot_tags)],
        {"aws:TagKeys": keys},
    )


def test_the_result_is_written_on_consistent_snapshots_only_and_only_its_keys(
    principals: dict[str, Principal],
) -> None:
    consistent = {tags.RESOURCE: tags.CONSISTENT_SNAPSHOT}
    assert _who(principals, [_tagging(consistent, list(tags.BOOT_TEST_KEYS))]) >= {STEP}
    backup = {"ConsistentSnapshot": "WindowsVSS"}
    assert not _who(principals, [_tagging(backup, list(tags.BOOT_TEST_KEYS))]) & {STEP}
    verdict = [tags.STATUS, tags.BOOT_TEST]
    assert not _who(principals, [_tagging(consistent, verdict)]) & {STEP}


def test_the_security_group_lets_nothing_in_and_only_https_to_the_endpoints_out(
    stack: Stack,
) -> None:
    group = stack.resolve(stack.resources["BootTestSecurityGroup"]["Properties"])
    assert "SecurityGroupIngress" not in group
    assert not [b for b in stack.resources.values() if b["Type"].endswith("SecurityGroupIngress")]
    assert group["VpcId"] == OUR_VPC
    assert group["SecurityGroupEgress"] == [
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "DestinationSecurityGroupId": ENDPOINTS_GROUP,
            "Description": "HTTPS to the SSM interface endpoints only",
        }
    ]


def test_without_the_endpoints_group_nothing_leaves() -> None:
    stack = Stack({k: v for k, v in BOOT_TEST.items() if k != "BootTestEndpointSecurityGroupId"})
    group = stack.resolve(stack.resources["BootTestSecurityGroup"]["Properties"])
    [rule] = group["SecurityGroupEgress"]
    assert rule["CidrIp"] == "127.0.0.1/32"


def test_off_by_default_nothing_of_the_boot_test_is_deployed_or_allowed() -> None:
    stack = Stack(
        {"HelperMode": "fleet", **{k: BOOT_TEST[k] for k in ("HelperSubnetIds", "HelperVpcId")}}
    )
    assert stack.condition("IsFleet")
    assert not stack.condition("BootTests")
    assert stack.resources["BootTestSecurityGroup"]["Condition"] == "BootTests"
    principals = iam.principals(stack)
    assert principals[STEP].actions <= {
        "ec2:DescribeSnapshots",
        "ec2:DescribeInstances",
        "ec2:DescribeImages",
        "ec2:DescribeVolumes",
        "ec2:DescribeSubnets",
        "ec2:DescribeInstanceStatus",
        "ssm:DescribeInstanceInformation",
    }
    # Nor may the reconciliation terminate or delete anything of a boot test.
    sweep = principals[SWEEP].actions
    assert "ec2:TerminateInstances" not in sweep
    for found in (CLONE, CLONE_ROOT):
        request = Request("ec2:DeleteVolume", [_ec2("volume", "vol-0123456789abcdef0", **found)])
        assert not allows(principals[SWEEP].statements, request), found


def test_the_launch_the_code_makes_is_the_one_iam_allows(stack: Stack) -> None:
    """logic/boot_test.launch_request asks for what the statements demand."""
    settings = replace(
        Settings(),
        helper_subnet_ids=OUR_SUBNETS,
        helper_instance_profile=stack.get_att("HelperInstanceProfile", "Arn"),
        boot_test="weekly",
        boot_test_security_group=stack.ref("BootTestSecurityGroup"),
        boot_test_subnet_ids=OUR_SUBNETS,
    )
    plan = boot_test.Plan("test", "", image_id=SOURCES_IMAGE, root_device="/dev/sda1")
    request = boot_test.launch_request(settings, plan, OUR_SUBNETS[0], "arn:x", "snap-1")
    assert request["ImageId"] == SOURCES_IMAGE
    assert request["MetadataOptions"]["HttpTokens"] == "required"
    assert request["IamInstanceProfile"] == {"Arn": settings.helper_instance_profile}
    assert request["SecurityGroupIds"] == [stack.ref("BootTestSecurityGroup")]
    assert "KeyName" not in request
    assert "UserData" not in request
    assert all(m["Ebs"]["Encrypted"] for m in request["BlockDeviceMappings"])
    for specification in request["TagSpecifications"]:
        found = tags.as_dict(specification["Tags"])
        assert found[tags.RESOURCE] == tags.BOOT_TEST_INSTANCE, specification["ResourceType"]
    assert request["InstanceType"] == stack.values["HelperInstanceType"]
