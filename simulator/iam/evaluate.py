"""IAM's decision on one request, judged against a principal's identity-policy statements.

What it implements, from the IAM User Guide's "Policy evaluation logic" and "IAM JSON policy
elements reference" pages, for identity-based policies of one account (no SCPs, permission
boundaries, session policies or resource-based policies):
- an explicit Deny in any applying statement wins; otherwise an Allow that applies to every
  resource the request is authorized on; otherwise the implicit deny;
- Action / NotAction (case-insensitive) and Resource / NotResource (case-sensitive), with
  the wildcards `*` (any run of characters, `:` and `/` included) and `?` (one character);
- Condition: every operator of the block and every key must hold (AND), any of a key's
  values may match (OR); the operators String(Not)Equals(IgnoreCase), String(Not)Like,
  Arn(Not)Equals, Arn(Not)Like, Numeric*, Bool and Null, each with `IfExists`, and the set
  qualifiers ForAllValues (true when the key is absent) and ForAnyValue; negated operators
  hold when the key is absent, as AWS documents;
- policy variables `${aws:...}` and the like in Resource and in condition values, filled
  from the request context (a variable the context lacks makes the element not match), and
  `${*}`, `${?}`, `${$}`.
Anything else in a statement or a condition (another operator, a Principal in an identity
policy, an unknown element) raises NotImplementedError: nothing is allowed by default.
"""

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simulator.iam import wildcards
from simulator.iam.stack import Statement, _as_list


@dataclass(frozen=True)
class Resource:
    """One resource a call touches, as IAM sees it: its ARN and its tags."""

    arn: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # Condition keys of this resource (e.g. ec2:Owner, ec2:Encrypted), besides its tags.
    keys: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One API call: every resource IAM authorizes it on, and the request's own keys.

    `context` holds request-level condition keys, e.g. {"aws:TagKeys": [...],
    "aws:RequestTag/k": "v", "ec2:CreateAction": "CreateVolume", "kms:ViaService": ...}.
    """

    action: str
    resources: Sequence[Resource]
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """IAM's answer: allowed, or the resource refused and why (as AWS words it)."""

    allowed: bool
    resource: str = ""
    explicit_deny: bool = False

    @property
    def reason(self) -> str:
        if self.allowed:
            return ""
        if self.explicit_deny:
            return "with an explicit deny in an identity-based policy"
        return "because no identity-based policy allows the action"


def _resource_context(resource: Resource) -> dict[str, Any]:
    keys: dict[str, Any] = dict(resource.keys)
    for key, value in resource.tags.items():
        for prefix in ("aws:ResourceTag/", "ec2:ResourceTag/", "ssm:resourceTag/"):
            keys[f"{prefix}{key}"] = value
    return keys


def _value(context: Mapping[str, Any], key: str) -> Any:
    """Condition key names are case-insensitive (their tag-key part too, for our keys)."""
    wanted = key.lower()
    for name, value in context.items():
        if name.lower() == wanted:
            return value
    return None


# --- wildcards and policy variables -----------------------------------------------------------

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SPECIAL = {"*": "*", "?": "?", "$": "$"}


class _Unresolved(Exception):
    """A policy variable the request context does not have: the element does not match."""


def _fill(text: str, context: Mapping[str, Any]) -> tuple[str, set[int]]:
    """The text with its policy variables replaced; the positions of literal `*`/`?` in it."""
    out: list[str] = []
    literal: set[int] = set()
    position = 0
    for match in _VARIABLE.finditer(text):
        out.append(text[position : match.start()])
        name = match.group(1)
        if name in _SPECIAL:
            literal.add(sum(len(part) for part in out))
            out.append(_SPECIAL[name])
        else:
            value = _value(context, name)
            if value is None or isinstance(value, list):
                raise _Unresolved(name)
            start = sum(len(part) for part in out)
            filled = str(value)
            literal.update(start + i for i, c in enumerate(filled) if c in "*?")
            out.append(filled)
        position = match.end()
    out.append(text[position:])
    return "".join(out), literal


def _like(
    actual: str, pattern: str, context: Mapping[str, Any], *, ignore_case: bool = False
) -> bool:
    filled, literal = _fill(pattern, context)
    return wildcards.matches(actual, filled, ignore_case=ignore_case, literal=frozenset(literal))


# --- conditions --------------------------------------------------------------------------------

Test = Callable[[str, str, Mapping[str, Any]], bool]


def _equals(actual: str, wanted: str, context: Mapping[str, Any]) -> bool:
    return actual == _fill(wanted, context)[0]


def _equals_ignore_case(actual: str, wanted: str, context: Mapping[str, Any]) -> bool:
    return actual.lower() == _fill(wanted, context)[0].lower()


def _string_like(actual: str, wanted: str, context: Mapping[str, Any]) -> bool:
    return _like(actual, wanted, context)


def _bool(actual: str, wanted: str, context: Mapping[str, Any]) -> bool:
    return str(actual).lower() == _fill(wanted, context)[0].lower()


def _numeric(compare: Callable[[float, float], bool]) -> Test:
    def test(actual: str, wanted: str, context: Mapping[str, Any]) -> bool:
        try:
            return compare(float(actual), float(_fill(wanted, context)[0]))
        except ValueError:
            return False

    return test


# Operator -> (test, negated). Arn* compare like String* (ARNs here are whole strings).
_OPERATORS: dict[str, tuple[Test, bool]] = {
    "StringEquals": (_equals, False),
    "StringNotEquals": (_equals, True),
    "StringEqualsIgnoreCase": (_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_equals_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_string_like, False),
    "ArnLike": (_string_like, False),
    "ArnNotEquals": (_string_like, True),
    "ArnNotLike": (_string_like, True),
    "Bool": (_bool, False),
    "NumericEquals": (_numeric(lambda a, b: a == b), False),
    "NumericNotEquals": (_numeric(lambda a, b: a == b), True),
    "NumericLessThan": (_numeric(lambda a, b: a < b), False),
    "NumericLessThanEquals": (_numeric(lambda a, b: a <= b), False),
    "NumericGreaterThan": (_numeric(lambda a, b: a > b), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, b: a >= b), False),
}


def _as_strings(value: Any) -> list[str]:
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(value)]


def condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, Any]) -> bool:
    """One key of one operator of a Condition block, judged on the request context."""
    values = _as_strings(wanted)
    actual = _value(context, key)
    qualifier, _, base = operator.rpartition(":")
    if qualifier not in {"", "ForAllValues", "ForAnyValue"}:
        raise NotImplementedError(f"condition qualifier {qualifier} is not modelled here")
    if base == "Null":
        if qualifier:
            raise NotImplementedError(f"{operator} is not modelled here")
        return (actual is None) == (values[0].lower() == "true")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _OPERATORS:
        raise NotImplementedError(f"condition operator {operator} is not modelled here")
    test, negated = _OPERATORS[base]
    if actual is None:
        if qualifier == "ForAllValues":
            return True  # vacuously true, as IAM documents
        if qualifier == "ForAnyValue":
            return False
        return if_exists or negated

    def matches(item: Any) -> bool:
        try:
            found = any(test(_as_strings(item)[0], w, context) for w in values)
        except _Unresolved:
            found = False
        return not found if negated else found

    items = _as_list(actual)
    if qualifier == "ForAllValues":
        return all(matches(item) for item in items)
    if qualifier == "ForAnyValue":
        return any(matches(item) for item in items)
    if isinstance(actual, list):
        raise NotImplementedError(f"{key} is multivalued: {operator} needs a set qualifier")
    return matches(actual)


# --- statements --------------------------------------------------------------------------------


def _any_like(
    value: str, patterns: Iterable[str], context: Mapping[str, Any], *, ignore_case: bool
) -> bool:
    for pattern in patterns:
        try:
            if _like(value, pattern, context, ignore_case=ignore_case):
                return True
        except _Unresolved:
            continue
    return False


def statement_applies(
    statement: Statement, action: str, arn: str, context: Mapping[str, Any]
) -> bool:
    """True when the statement covers this action on this resource in this context."""
    if statement.not_actions:
        action_ok = not _any_like(action, statement.not_actions, {}, ignore_case=True)
    else:
        action_ok = _any_like(action, statement.actions, {}, ignore_case=True)
    if not action_ok:
        return False
    if statement.not_resources:
        resource_ok = not _any_like(arn, statement.not_resources, context, ignore_case=False)
    else:
        resource_ok = _any_like(arn, statement.resources, context, ignore_case=False)
    return resource_ok and all(
        condition_holds(operator, key, wanted, context)
        for operator, keys in statement.condition.items()
        for key, wanted in keys.items()
    )


def decide(statements: Iterable[Statement], request: Request) -> Decision:
    """Allowed when an Allow covers every resource of the request and no Deny covers any."""
    statements = list(statements)
    if not request.resources:
        raise ValueError(f"{request.action}: a request authorizes at least one resource")
    for resource in request.resources:
        context = {**request.context, **_resource_context(resource)}
        applying = [
            s for s in statements if statement_applies(s, request.action, resource.arn, context)
        ]
        if any(s.effect == "Deny" for s in applying):
            return Decision(False, resource.arn, explicit_deny=True)
        if not any(s.effect == "Allow" for s in applying):
            return Decision(False, resource.arn)
    return Decision(True)


def allows(statements: Iterable[Statement], request: Request) -> bool:
    return decide(statements, request).allowed
