"""The one IAM evaluator (simulator/iam), as the simulator and tests/security use it.

Each rule below is one the IAM User Guide states ("Policy evaluation logic", "IAM JSON policy
elements: Condition operators", "Policy variables"); anything the evaluator does not model
must raise, never allow.
"""

from typing import Any

import pytest

from simulator.iam import reference
from simulator.iam.evaluate import Request, Resource, allows, condition_holds, decide
from simulator.iam.requests import Account, Requests
from simulator.iam.stack import Statement

VOLUME = "arn:aws:ec2:us-east-1:123456789012:volume/vol-1"


def _statement(**raw: Any) -> Statement:
    return Statement.of({"Effect": "Allow", **raw}, "test")


def _tags(action: str = "ec2:CreateTags", **context: Any) -> Request:
    return Request(action, [Resource(VOLUME, {"team": "web"})], context)


def test_an_explicit_deny_wins_over_any_allow() -> None:
    allow = _statement(Action="ec2:*", Resource="*")
    deny = Statement.of({"Effect": "Deny", "Action": "ec2:CreateTags", "Resource": "*"}, "t")
    assert allows([allow], _tags())
    decision = decide([allow, deny], _tags())
    assert not decision.allowed
    assert decision.reason == "with an explicit deny in an identity-based policy"
    assert decide([], _tags()).reason == "because no identity-based policy allows the action"


def test_every_resource_of_a_request_needs_an_allow() -> None:
    on_volumes = _statement(Action="ec2:AttachVolume", Resource="arn:aws:ec2:*:*:volume/*")
    instance = Resource("arn:aws:ec2:us-east-1:123456789012:instance/i-1")
    request = Request("ec2:AttachVolume", [Resource(VOLUME), instance])
    decision = decide([on_volumes], request)
    assert not decision.allowed
    assert decision.resource == instance.arn


def test_actions_match_without_case_and_resources_with_case() -> None:
    assert allows([_statement(Action="EC2:createtags", Resource=VOLUME)], _tags())
    assert not allows([_statement(Action="ec2:CreateTags", Resource=VOLUME.upper())], _tags())


def test_wildcards_are_star_and_question_mark_only() -> None:
    assert allows([_statement(Action="ec2:Create?ags", Resource="arn:aws:ec2:*")], _tags())
    # `[` is no wildcard in IAM (it is in fnmatch).
    bracket = _statement(Action="ec2:CreateTags", Resource="arn:aws:ec2:us-east-1:*:volume/vol-[1]")
    assert not allows([bracket], _tags())


def test_not_action_and_not_resource_match_everything_else() -> None:
    all_but_delete = _statement(NotAction="ec2:Delete*", Resource="*")
    assert allows([all_but_delete], _tags())
    assert not allows([all_but_delete], _tags("ec2:DeleteVolume"))
    not_instances = _statement(Action="ec2:CreateTags", NotResource="arn:aws:ec2:*:*:instance/*")
    assert allows([not_instances], _tags())


def test_a_statement_with_elements_iam_does_not_take_in_a_role_is_refused_loudly() -> None:
    with pytest.raises(NotImplementedError):
        _statement(Action="ec2:*", Resource="*", Principal={"AWS": "*"})
    with pytest.raises(ValueError, match="Action or NotAction"):
        _statement(Action="ec2:*", NotAction="ec2:Delete*", Resource="*")


@pytest.mark.parametrize(
    ("operator", "wanted", "context", "holds"),
    [
        ("StringEquals", "web", {"k": "web"}, True),
        ("StringEquals", "web", {}, False),  # absent key: false
        ("StringNotEquals", "web", {}, True),  # negated, absent key: true
        ("StringNotEquals", "web", {"k": "web"}, False),
        ("StringEqualsIgnoreCase", "WEB", {"k": "web"}, True),
        ("StringLike", "w*", {"k": "web"}, True),
        ("StringNotLike", "w*", {"k": "db"}, True),
        ("StringEqualsIfExists", "web", {}, True),
        ("StringEqualsIfExists", "web", {"k": "db"}, False),
        ("ArnLike", "arn:aws:ec2:*:*:volume/*", {"k": VOLUME}, True),
        ("ArnEquals", "arn:aws:ec2:*:*:volume/*", {"k": VOLUME}, True),  # like ArnLike
        ("Bool", "true", {"k": "TRUE"}, True),
        ("Bool", "true", {"k": True}, True),
        ("NumericLessThan", "300", {"k": "200"}, True),
        ("NumericGreaterThanEquals", "300", {"k": "200"}, False),
        ("Null", "true", {}, True),
        ("Null", "false", {}, False),
        ("ForAllValues:StringEquals", ["a", "b"], {"k": ["a"]}, True),
        ("ForAllValues:StringEquals", ["a", "b"], {"k": ["a", "c"]}, False),
        ("ForAllValues:StringEquals", ["a"], {}, True),  # absent key: vacuously true
        ("ForAnyValue:StringEquals", ["a"], {"k": ["c", "a"]}, True),
        ("ForAnyValue:StringEquals", ["a"], {}, False),
        ("ForAllValues:StringLike", ["helper#*"], {"k": ["helper#i-1"]}, True),
    ],
)
def test_condition_operators_follow_iams_rules(
    operator: str, wanted: Any, context: dict[str, Any], holds: bool
) -> None:
    assert condition_holds(operator, "k", wanted, context) is holds


def test_condition_keys_are_case_insensitive() -> None:
    assert condition_holds(
        "StringEquals", "AWS:ResourceTag/Team", "web", {"aws:resourcetag/team": "web"}
    )


def test_a_multivalued_key_needs_a_set_qualifier() -> None:
    with pytest.raises(NotImplementedError, match="set qualifier"):
        condition_holds("StringEquals", "k", "a", {"k": ["a"]})


@pytest.mark.parametrize("operator", ["IpAddress", "DateLessThan", "ForEach:StringEquals"])
def test_an_operator_it_does_not_model_raises(operator: str) -> None:
    with pytest.raises(NotImplementedError):
        condition_holds(operator, "k", "x", {"k": "x"})


def test_policy_variables_fill_from_the_request_context() -> None:
    own = _statement(
        Action="ec2:CreateTags",
        Resource="*",
        Condition={"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}},
    )
    assert allows([own], _tags(**{"aws:PrincipalTag/team": "web"}))
    assert not allows([own], _tags(**{"aws:PrincipalTag/team": "db"}))
    assert not allows([own], _tags())  # a variable the context lacks: no match
    literal = _statement(Action="ec2:CreateTags", Resource="arn:aws:ec2:us-east-1:*:volume/${*}")
    assert not allows([literal], _tags())  # ${*} is a literal star


def test_the_reference_names_the_resources_each_action_is_authorized_on() -> None:
    names = {kind.name: kind.required for kind in reference.resource_types("ec2:AttachVolume")}
    assert names == {"instance": True, "volume": True, "": False}
    assert not reference.has_resource_types("logs:DescribeLogGroups")
    assert not reference.has_resource_types("ssm:GetCommandInvocation")
    with pytest.raises(reference.NotInReference):
        reference.resource_types("ec2:NoSuchAction")


def test_a_call_with_resource_types_that_no_builder_knows_is_never_let_through() -> None:
    requests = Requests(Account("123456789012", "us-east-1"))
    with pytest.raises(NotImplementedError, match="judge it"):
        requests.of("ec2:ModifyVolume", {"VolumeId": "vol-1"})
    # Actions without resource types are authorized on "*".
    [described] = requests.of("ec2:DescribeVolumes", {})
    assert [r.arn for r in described.resources] == ["*"]
