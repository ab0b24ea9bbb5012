"""IAM's decision on one request, judged against a principal's identity-policy statements."""

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simulator.iam.stack import Statement, _as_list


@dataclass(frozen=True)
class Resource:
    """One resource a call touches, as IAM sees it: its ARN and its tags."""

    arn: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One API call: every resource IAM authorizes it on, and the request's own keys.

    `context` holds request-level condition keys, e.g. {"aws:TagKeys": [...],
    "aws:RequestTag/k": "v", "ec2:CreateAction": "CreateVolume", "kms:ViaService": ...}.
    """

    action: str
    resources: Sequence[Resource]
    context: Mapping[str, Any] = field(default_factory=dict)


def _resource_context(resource: Resource) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for key, value in resource.tags.items():
        for prefix in ("aws:ResourceTag/", "ec2:ResourceTag/", "ssm:resourceTag/"):
            keys[f"{prefix}{key}"] = value
    return keys


def _value(context: Mapping[str, Any], key: str) -> Any:
    """Condition keys are case-insensitive."""
    for name, value in context.items():
        if name.lower() == key.lower():
            return value
    return None


def _string_test(operator: str) -> Any:
    if operator in {"StringEquals", "ArnEquals"}:
        return lambda actual, wanted: actual == wanted
    if operator in {"StringLike", "ArnLike"}:
        return fnmatch.fnmatchcase
    if operator == "Bool":
        return lambda actual, wanted: str(actual).lower() == str(wanted).lower()
    raise NotImplementedError(f"condition operator {operator} is not modelled here")


def _condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, Any]) -> bool:
    values = [str(v) for v in _as_list(wanted)]
    actual = _value(context, key)
    if operator == "Null":
        return (actual is None) == (values[0].lower() == "true")
    qualifier, _, base = operator.rpartition(":")
    test = _string_test(base)
    if qualifier == "ForAllValues":  # true when the key is absent, as in IAM
        return actual is None or all(any(test(a, w) for w in values) for a in _as_list(actual))
    if qualifier == "ForAnyValue":
        return actual is not None and any(any(test(a, w) for w in values) for a in _as_list(actual))
    if qualifier:
        raise NotImplementedError(f"condition qualifier {qualifier} is not modelled here")
    return actual is not None and any(test(actual, w) for w in values)


def statement_applies(
    statement: Statement, action: str, arn: str, context: Mapping[str, Any]
) -> bool:
    return (
        statement.matches_action(action)
        and statement.matches_resource(arn)
        and all(
            _condition_holds(operator, key, wanted, context)
            for operator, keys in statement.condition.items()
            for key, wanted in keys.items()
        )
    )


def allows(statements: Iterable[Statement], request: Request) -> bool:
    """True when an Allow covers every resource of the request and no Deny covers any."""
    statements = list(statements)
    if not request.resources:
        raise ValueError(f"{request.action}: a request authorizes at least one resource")
    for resource in request.resources:
        context = {**request.context, **_resource_context(resource)}
        applying = [
            s for s in statements if statement_applies(s, request.action, resource.arn, context)
        ]
        if any(s.effect == "Deny" for s in applying) or not any(
            s.effect == "Allow" for s in applying
        ):
            return False
    return True
