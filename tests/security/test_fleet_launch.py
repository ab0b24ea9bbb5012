"""Issue #13 item 4: the helper fleet's launches and terminations, as IAM judges them.

The legitimate launch (AWS's Windows image, one of HelperSubnetIds, the stack's security
group and instance profile, IMDSv2, an encrypted root volume, our tags at launch) is
allowed; each request an attacker holding the launching role would try instead is refused
by the simulator's evaluator (simulator/iam/evaluate.py) over the synthesized template.
RunInstances is authorized on every resource it touches (Service Authorization Reference:
image, instance, network-interface, security-group, subnet, volume): one refused refuses
the launch.
"""

from collections.abc import Callable
from dataclasses import replace

import pytest

from tests.security import iam
from tests.security.iam import Principal, Request, Resource, Stack, allows
from vss_restore import tags

ACCOUNT, REGION = iam.ACCOUNT, iam.REGION
OUR_SUBNETS = ("subnet-0aaa1111bbb22233a", "subnet-0aaa1111bbb22233b")
OUR_VPC = "vpc-0aaa1111bbb222333"
FLEET = {
    "HelperMode": "fleet",
    "HelperSubnetIds": ",".join(OUR_SUBNETS),
    "HelperVpcId": OUR_VPC,
}
AMAZONS_WINDOWS = "ami-0c2b0d3fb02824d92"
OUR_TAGS = {tags.HELPER: tags.HELPER_VALUE, tags.RESOURCE: tags.LAUNCHED_HELPER}
LAUNCHER = "PrepareHelperFunctionRole"
TERMINATORS = {"HelperOnlineFunctionRole", "RetireHelpersFunctionRole"}


def _ec2(kind: str, name: str, keys: dict[str, str] | None = None, **found: str) -> Resource:
    account = "" if kind == "image" else ACCOUNT
    return Resource(f"arn:aws:ec2:{REGION}:{account}:{kind}/{name}", found, keys or {})


def _request_tags(found: dict[str, str]) -> dict[str, object]:
    return {"aws:TagKeys": sorted(found), **{f"aws:RequestTag/{k}": v for k, v in found.items()}}


class Launch:
    """One RunInstances as AWS authorizes it, with what the stack would launch."""

    def __init__(self, stack: Stack) -> None:
        self.image = _ec2("image", AMAZONS_WINDOWS, {"ec2:Owner": "amazon"})
        self.instance_keys = {
            "ec2:InstanceProfile": stack.get_att("HelperInstanceProfile", "Arn"),
            "ec2:InstanceType": "m6i.large",
            "ec2:MetadataHttpTokens": "required",
        }
        self.subnet = OUR_SUBNETS[1]
        self.vpc = OUR_VPC
        self.security_group = stack.ref("HelperSecurityGroup")
        self.root_encrypted = "true"
        self.tags = dict(OUR_TAGS)

    def requests(self) -> list[Request]:
        context = _request_tags(self.tags)
        run = Request(
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
        )
        tagging = {**context, "ec2:CreateAction": "RunInstances"}
        return [
            run,
            Request("ec2:CreateTags", [_ec2("instance", "*")], tagging),
            Request("ec2:CreateTags", [_ec2("volume", "*")], tagging),
        ]


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack(FLEET)


@pytest.fixture(scope="module")
def principals(stack: Stack) -> dict[str, Principal]:
    return iam.principals(stack)


def _allowed(principal: Principal, requests: list[Request]) -> bool:
    return all(allows(principal.statements, request) for request in requests)


def _pass_role(stack: Stack, service: str, role: str = "") -> Request:
    arn = role or stack.get_att("HelperRole", "Arn")
    return Request("iam:PassRole", [Resource(arn)], {"iam:PassedToService": service})


def test_the_legitimate_launch_is_allowed(principals: dict[str, Principal], stack: Stack) -> None:
    launcher = principals[LAUNCHER]
    assert _allowed(launcher, Launch(stack).requests())
    assert allows(launcher.statements, _pass_role(stack, "ec2.amazonaws.com"))


def test_an_ami_given_as_helper_image_is_the_only_image_allowed() -> None:
    own = "ami-0123456789abcdef0"
    stack = Stack({**FLEET, "HelperImage": own})
    launcher = iam.principals(stack)[LAUNCHER]
    launch = Launch(stack)
    launch.image = _ec2("image", own, {"ec2:Owner": ACCOUNT})
    assert _allowed(launcher, launch.requests())
    launch.image = _ec2("image", AMAZONS_WINDOWS, {"ec2:Owner": "amazon"})
    assert not _allowed(launcher, launch.requests())


def _other_image(launch: Launch) -> None:
    launch.image = _ec2("image", "ami-0badbadbadbadbad0", {"ec2:Owner": "210987654321"})


def _other_subnet(launch: Launch) -> None:
    launch.subnet = "subnet-0fff1111bbb222333"


def _other_vpc(launch: Launch) -> None:
    launch.vpc = "vpc-0fff1111bbb222333"


def _other_security_group(launch: Launch) -> None:
    launch.security_group = "sg-0fff1111bbb222333"


def _other_profile(launch: Launch) -> None:
    launch.instance_keys["ec2:InstanceProfile"] = (
        f"arn:aws:iam::{ACCOUNT}:instance-profile/AdminProfile"
    )


def _no_profile(launch: Launch) -> None:
    del launch.instance_keys["ec2:InstanceProfile"]


def _other_instance_type(launch: Launch) -> None:
    launch.instance_keys["ec2:InstanceType"] = "p5.48xlarge"


def _imdsv1(launch: Launch) -> None:
    launch.instance_keys["ec2:MetadataHttpTokens"] = "optional"


def _unencrypted_root(launch: Launch) -> None:
    launch.root_encrypted = "false"


def _no_tags(launch: Launch) -> None:
    launch.tags = {}


def _helper_tag_only(launch: Launch) -> None:
    launch.tags = {tags.HELPER: tags.HELPER_VALUE}


def _other_resource_tag(launch: Launch) -> None:
    launch.tags = {**OUR_TAGS, tags.RESOURCE: tags.TEMPORARY_VOLUME}


ATTACKS: dict[str, Callable[[Launch], None]] = {
    "another account's image": _other_image,
    "a subnet not in HelperSubnetIds": _other_subnet,
    "a network interface in another VPC": _other_vpc,
    "another security group": _other_security_group,
    "another instance profile": _other_profile,
    "no instance profile": _no_profile,
    "another instance type": _other_instance_type,
    "IMDSv1 allowed": _imdsv1,
    "an unencrypted root volume": _unencrypted_root,
    "no tags at launch": _no_tags,
    "the helper tag without vss-restore:resource": _helper_tag_only,
    "tagged as another of our resources": _other_resource_tag,
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_launch_other_than_ours_is_refused(
    principals: dict[str, Principal], stack: Stack, attack: str
) -> None:
    launch = Launch(stack)
    ATTACKS[attack](launch)
    refused = [p for p in principals.values() if _allowed(p, launch.requests())]
    assert not refused, f"{attack}: allowed to {[p.name for p in refused]}"


def test_only_the_launching_step_may_launch(principals: dict[str, Principal], stack: Stack) -> None:
    launching = {n for n, p in principals.items() if _allowed(p, Launch(stack).requests())}
    assert launching == {LAUNCHER}


def test_tags_on_instances_only_at_our_launch(
    principals: dict[str, Principal], stack: Stack
) -> None:
    """A role that may tag at RunInstances cannot tag a running instance (make one ours)."""
    later = Request(
        "ec2:CreateTags", [_ec2("instance", "i-0123456789abcdef0")], _request_tags(OUR_TAGS)
    )
    other_call = Request(
        "ec2:CreateTags",
        [_ec2("instance", "*")],
        {**_request_tags(OUR_TAGS), "ec2:CreateAction": "CreateVolume"},
    )
    for request in (later, other_call):
        assert not [n for n, p in principals.items() if allows(p.statements, request)]


@pytest.mark.parametrize(
    ("service", "role"),
    [
        ("lambda.amazonaws.com", ""),
        ("ec2.amazonaws.com", f"arn:aws:iam::{ACCOUNT}:role/Admin"),
        ("ec2.amazonaws.com", f"arn:aws:iam::{ACCOUNT}:role/PrepareHelperFunctionRole"),
    ],
)
def test_the_helper_role_is_passed_to_ec2_only_and_no_other_role(
    principals: dict[str, Principal], stack: Stack, service: str, role: str
) -> None:
    request = _pass_role(stack, service, role)
    assert not [n for n, p in principals.items() if allows(p.statements, request)]


def _terminate(instance_tags: dict[str, str], action: str = "ec2:TerminateInstances") -> Request:
    return Request(action, [_ec2("instance", "i-0123456789abcdef0", **instance_tags)])


def test_only_our_helpers_are_terminated_by_the_steps_that_retire_them(
    principals: dict[str, Principal],
) -> None:
    ours = _terminate(OUR_TAGS)
    assert {n for n, p in principals.items() if allows(p.statements, ours)} == TERMINATORS


@pytest.mark.parametrize(
    "instance_tags",
    [
        {},
        {tags.HELPER: tags.HELPER_VALUE},  # a named helper: the operator's, never terminated
        {tags.RESOURCE: tags.LAUNCHED_HELPER},
        {"ConsistentSnapshot": "WindowsVSS", tags.HELPER: "yes", tags.RESOURCE: "helper"},
    ],
    ids=["untagged", "named-helper", "resource-tag-only", "lookalike"],
)
def test_no_role_terminates_or_stops_an_instance_not_launched_by_the_fleet(
    principals: dict[str, Principal], instance_tags: dict[str, str]
) -> None:
    for action in ("ec2:TerminateInstances", "ec2:StopInstances"):
        request = _terminate(instance_tags, action)
        assert not [n for n, p in principals.items() if allows(p.statements, request)], action


def test_no_role_stops_even_our_helpers(principals: dict[str, Principal]) -> None:
    """Nothing stops a helper (a stopped one still costs its volume): it is terminated."""
    request = _terminate(OUR_TAGS, "ec2:StopInstances")
    assert not [n for n, p in principals.items() if allows(p.statements, request)]


def test_the_helpers_own_role_holds_only_the_ssm_agents_policy(
    principals: dict[str, Principal],
) -> None:
    helper = principals["HelperRole"]
    assert helper.trusted == ("ec2.amazonaws.com",)
    assert helper.managed == ("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",)
    assert helper.statements == ()


def test_the_named_mode_creates_no_launch_permission() -> None:
    principals = iam.principals(Stack({"HelperMode": "named"}))
    assert "HelperRole" not in principals
    for principal in principals.values():
        for action in ("ec2:RunInstances", "ec2:TerminateInstances", "iam:PassRole"):
            assert action not in principal.actions, (principal.name, action)


def test_the_security_group_has_no_inbound_rule(stack: Stack) -> None:
    group = stack.resources["HelperSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in group
    others = [
        body
        for body in stack.resources.values()
        if body["Type"] == "AWS::EC2::SecurityGroupIngress"
    ]
    assert not others


def test_the_launch_the_code_makes_is_the_one_iam_allows(stack: Stack) -> None:
    """logic/fleet.launch_request asks for what the statements demand (one source of truth
    for the tags, IMDSv2, the encrypted root volume, the profile and the group)."""
    from vss_restore.logic.fleet import launch_request
    from vss_restore.settings import Settings

    settings = replace(
        Settings(),
        helper_mode="fleet",
        helper_subnet_ids=OUR_SUBNETS,
        helper_security_group="sg-0aaa1111bbb222333",
        helper_instance_profile=stack.get_att("HelperInstanceProfile", "Arn"),
    )
    request = launch_request(settings, AMAZONS_WINDOWS, OUR_SUBNETS[0], "token", "execution")
    assert request["MetadataOptions"]["HttpTokens"] == "required"
    assert request["IamInstanceProfile"] == {"Arn": settings.helper_instance_profile}
    assert request["SecurityGroupIds"] == [settings.helper_security_group]
    assert all(m["Ebs"]["Encrypted"] for m in request["BlockDeviceMappings"])
    for specification in request["TagSpecifications"]:
        found = tags.as_dict(specification["Tags"])
        assert OUR_TAGS.items() <= found.items(), specification["ResourceType"]
    assert request["InstanceType"] == stack.values["HelperInstanceType"]
