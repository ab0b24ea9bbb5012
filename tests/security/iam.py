"""The IAM policies as deployed: template.yaml after the SAM transform, its intrinsics resolved.

`synthesized()` runs aws-sam-translator offline (the managed-policy map SAM would fetch from
IAM is a stub; the template names no managed policy itself). `Stack` resolves what the
transform left (Ref, Fn::GetAtt, Fn::Sub, Fn::If, ...) for one set of parameter values, with
the physical names of a test account, and lists every principal's policy statements.
`allows()` judges a request against a principal's statements: enough of IAM's evaluation
(Allow/Deny, wildcards, the condition operators the template uses) to ask "could this role
do that?" of the synthesized policies, and to enforce them on calls made against moto.

Run as a module to print the per-principal table SECURITY.md holds:
    PYTHONPATH=functions:. .venv/bin/python -m tests.security.iam
"""

import fnmatch
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.session import Session
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from tools.cfn_template import load_template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"

ACCOUNT = "123456789012"  # moto's default account, so that moto's ARNs match these
REGION = "us-east-1"
PARTITION = "aws"
STACK = "vss-restore"

# What SAM's ManagedPolicyLoader would read from IAM: only consulted for managed policies a
# template names by name (ours names none); SAM itself adds the Lambda basic execution role
# and the X-Ray policy by ARN.
MANAGED_POLICY_MAP = {
    "AWSLambdaBasicExecutionRole": (
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ),
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
}

# Read-only by name; everything else counts as mutating.
READ_ONLY_PREFIXES = ("Describe", "Get", "List")


def is_read_only(action: str) -> bool:
    return action.split(":", 1)[1].startswith(READ_ONLY_PREFIXES)


# --- the SAM transform ----------------------------------------------------------------------


@functools.cache
def _synthesized_text() -> str:
    template = load_template(TEMPLATE)
    # Local paths are what `sam build` uploads; the transform only wants S3 URIs.
    template["Globals"]["Function"]["CodeUri"] = "s3://vss-restore-build/functions.zip"
    for body in template["Resources"].values():
        if body.get("Type") == "AWS::Serverless::StateMachine":
            body["Properties"]["DefinitionUri"] = "s3://vss-restore-build/restore.asl.json"
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        boto_session=Session(region_name=REGION),
    )
    translated = translator.translate(
        sam_template=json.loads(json.dumps(template)),  # plain str, not SourceStr
        parameter_values={},
        get_managed_policy_map=lambda: MANAGED_POLICY_MAP,
    )
    return json.dumps(translated)


def synthesized() -> dict[str, Any]:
    """A fresh copy of the CloudFormation template SAM makes of template.yaml."""
    loaded: dict[str, Any] = json.loads(_synthesized_text())
    return loaded


# --- resolving the intrinsics ---------------------------------------------------------------


class _NoValue:
    """AWS::NoValue: the item or property disappears."""


NO_VALUE = _NoValue()


def _arn(service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


@dataclass
class Stack:
    """The synthesized template deployed with these parameter values in the test account.

    Physical names are the logical IDs unless `names` gives one (a moto table or topic).
    """

    parameters: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.template = synthesized()
        self.resources: dict[str, dict[str, Any]] = self.template["Resources"]
        declared = self.template.get("Parameters", {})
        unknown = set(self.parameters) - set(declared)
        if unknown:
            raise KeyError(f"no such template parameters: {sorted(unknown)}")
        self.values: dict[str, str] = {
            name: str(self.parameters.get(name, body.get("Default", "")))
            for name, body in declared.items()
        }
        self.values.update(
            {
                "AWS::AccountId": ACCOUNT,
                "AWS::Region": REGION,
                "AWS::Partition": PARTITION,
                "AWS::StackName": STACK,
                "AWS::URLSuffix": "amazonaws.com",
            }
        )
        self._conditions: dict[str, bool] = {}

    # The values CloudFormation would give Ref and Fn::GetAtt for our resource types.
    def name(self, logical: str) -> str:
        return self.names.get(logical, logical)

    def ref(self, logical: str) -> str:
        if logical in self.values:
            return self.values[logical]
        kind = self.resources[logical]["Type"]
        name = self.name(logical)
        if kind == "AWS::SNS::Topic":
            return name if name.startswith("arn:") else _arn("sns", name)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        if kind == "AWS::StepFunctions::StateMachine":
            return _arn("states", f"stateMachine:{name}")
        if kind == "AWS::IAM::ManagedPolicy":
            return f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{name}"
        if kind == "AWS::Logs::LogGroup":
            return str(self.resolve(self.resources[logical]["Properties"]["LogGroupName"]))
        return name

    def get_att(self, logical: str, attribute: str) -> str:
        kind = self.resources[logical]["Type"]
        name = self.name(logical)
        arns = {
            "AWS::Lambda::Function": lambda: _arn("lambda", f"function:{name}"),
            "AWS::DynamoDB::Table": lambda: _arn("dynamodb", f"table/{name}"),
            "AWS::SQS::Queue": lambda: _arn("sqs", name),
            "AWS::IAM::Role": lambda: f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
            "AWS::Logs::LogGroup": lambda: _arn("logs", f"log-group:{self.ref(logical)}:*"),
            "AWS::StepFunctions::StateMachine": lambda: self.ref(logical),
            "AWS::Events::Rule": lambda: _arn("events", f"rule/{name}"),
            "AWS::KMS::Key": lambda: _arn("kms", f"key/{name}"),
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]()
        if attribute == "Name" and kind == "AWS::StepFunctions::StateMachine":
            return name
        raise NotImplementedError(f"Fn::GetAtt {logical}.{attribute} ({kind})")

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic function replaced by what CloudFormation makes of it."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), *_ = value.items()
            if key == "Ref":
                return NO_VALUE if argument == "AWS::NoValue" else self.ref(argument)
            if key == "Condition":
                return self.condition(argument)
            if key.startswith("Fn::"):
                return self._function(key, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _function(self, name: str, argument: Any) -> Any:
        if name == "Fn::GetAtt":
            logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(logical, attribute)
        if name == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return self._sub(text, {k: self.resolve(v) for k, v in variables.items()})
        if name == "Fn::If":
            condition, if_true, if_false = argument
            return self.resolve(if_true if self.condition(condition) else if_false)
        if name == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return str(left) == str(right)
        if name == "Fn::Not":
            return not self.resolve(argument[0])
        if name == "Fn::And":
            return all(self.resolve(item) for item in argument)
        if name == "Fn::Or":
            return any(self.resolve(item) for item in argument)
        if name == "Fn::Join":
            separator, items = argument
            return separator.join(str(item) for item in self.resolve(items))
        raise NotImplementedError(f"{name} is not modelled here")

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return str(variables[inner])
            if "." in inner and inner.split(".", 1)[0] in self.resources:
                logical, attribute = inner.split(".", 1)
                return self.get_att(logical, attribute)
            return self.ref(inner)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # --- the principals and their policies --------------------------------------------------

    def roles(self) -> dict[str, "Principal"]:
        """Every IAM role and managed policy the stack creates, by logical ID."""
        found: dict[str, Principal] = {}
        for logical, body in self.resources.items():
            if "Condition" in body and not self.condition(body["Condition"]):
                continue
            if not body["Type"].startswith("AWS::IAM::"):
                continue
            properties = self.resolve(body.get("Properties", {}))
            if body["Type"] == "AWS::IAM::Role":
                statements = [
                    Statement.of(raw, policy["PolicyName"])
                    for policy in properties.get("Policies", [])
                    for raw in _statements(policy["PolicyDocument"])
                ]
                trusted = sorted(
                    service
                    for raw in _statements(properties["AssumeRolePolicyDocument"])
                    for service in _as_list(raw.get("Principal", {}).get("Service", []))
                )
                found[logical] = Principal(
                    logical,
                    tuple(trusted),
                    tuple(properties.get("ManagedPolicyArns", [])),
                    tuple(statements),
                )
            elif body["Type"] == "AWS::IAM::ManagedPolicy":
                document = properties["PolicyDocument"]
                if isinstance(document, str):  # a JSON text through Fn::Sub
                    document = json.loads(document)
                statements = [Statement.of(raw, logical) for raw in _statements(document)]
                found[logical] = Principal(logical, (), (), tuple(statements))
            elif body["Type"] in {"AWS::IAM::Policy", "AWS::IAM::User", "AWS::IAM::Group"}:
                raise NotImplementedError(f"{logical}: {body['Type']} is not modelled here")
        return found


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(raw) for raw in _as_list(document.get("Statement", []))]


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, Mapping[str, Any]]
    policy: str

    @classmethod
    def of(cls, raw: Mapping[str, Any], policy: str) -> "Statement":
        for unsupported in ("NotAction", "NotResource", "Principal", "NotPrincipal"):
            if unsupported in raw:
                raise NotImplementedError(f"{policy}: {unsupported} in an identity policy")
        return cls(
            sid=str(raw.get("Sid", "")),
            effect=str(raw["Effect"]),
            actions=tuple(str(a) for a in _as_list(raw["Action"])),
            resources=tuple(str(r) for r in _as_list(raw["Resource"])),
            condition=dict(raw.get("Condition", {})),
            policy=policy,
        )

    def key(self) -> str:
        """The statement as text, to compare statements (conditions are dicts)."""
        return json.dumps([self.sid, self.effect, self.actions, self.resources, self.condition])

    def matches_action(self, action: str) -> bool:
        return any(fnmatch.fnmatch(action.lower(), pattern.lower()) for pattern in self.actions)

    def matches_resource(self, arn: str) -> bool:
        return any(fnmatch.fnmatchcase(arn, pattern) for pattern in self.resources)


@dataclass(frozen=True)
class Principal:
    """An IAM role (trusted services, managed policies, inline statements) or managed policy."""

    name: str
    trusted: tuple[str, ...]
    managed: tuple[str, ...]
    statements: tuple[Statement, ...]

    @property
    def actions(self) -> set[str]:
        return {action for s in self.statements for action in s.actions}


# --- judging a request ----------------------------------------------------------------------


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


# --- the per-principal table ----------------------------------------------------------------

ARN_PREFIX = re.compile(r"^arn:aws:(?P<service>[^:]+):(?P<region>[^:]*):(?P<account>[^:]*):")


def _short(arn: str) -> str:
    """`arn:aws:ec2:us-east-1:123456789012:volume/*` -> `ec2 volume/*` (other accounts named)."""
    match = ARN_PREFIX.match(arn)
    if not match:
        return arn
    rest = arn[match.end() :]
    account = match["account"]
    where = "" if account in {ACCOUNT, ""} else f" (account {account})"
    return f"{match['service']} {rest}{where}"


def _conditions(statement: Statement) -> str:
    parts = []
    for operator, keys in statement.condition.items():
        for key, wanted in keys.items():
            values = ", ".join(str(v) for v in _as_list(wanted))
            parts.append(f"{key} {operator} {values}")
    return "; ".join(parts) or "-"


def table(parameters: Mapping[str, str] | None = None) -> str:
    """Markdown: for every principal, each statement's actions, resources and conditions.

    Statements that exist only with DeleteOrphanVolumes=true are marked so.
    """
    with_deletes = Stack({**(parameters or {}), "DeleteOrphanVolumes": "true"}).roles()
    without = Stack({**(parameters or {}), "DeleteOrphanVolumes": "false"}).roles()
    lines = [
        "| principal | actions | resources | conditions |",
        "|---|---|---|---|",
    ]
    for name, principal in sorted(with_deletes.items()):
        baseline = {s.key() for s in without[name].statements} if name in without else set()
        managed = ", ".join(arn.rsplit("/", 1)[-1] for arn in principal.managed)
        who = f"**{name}**" + (f" (+ {managed})" if managed else "")
        for statement in principal.statements:
            only = "" if statement.key() in baseline else " (only with DeleteOrphanVolumes=true)"
            lines.append(
                f"| {who} | {', '.join(statement.actions)}{only} | "
                f"{', '.join(_short(r) for r in statement.resources)} | {_conditions(statement)} |"
            )
            who = ""
        if not principal.statements:
            lines.append(f"| {who} | - | - | - |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")
