"""The IAM policies as deployed: a SAM template after the transform, its intrinsics resolved.

`synthesized()` runs aws-sam-translator offline (the managed-policy map SAM would fetch from
IAM is a stub; the template names no managed policy itself). `Stack` resolves what the
transform left (Ref, Fn::GetAtt, Fn::Sub, Fn::If, ...) for one set of parameter values, with
the physical names of an account, and lists every principal's policy statements. The
simulator enforces these statements on every call (simulator/iam/enforce.py); tests/security
asks the same statements what an attacker could do.
"""

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.session import Session
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from simulator.iam import wildcards
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
def _synthesized_text(path: Path, region: str) -> str:
    template = load_template(path)
    # Local paths are what `sam build` uploads; the transform only wants S3 URIs.
    template["Globals"]["Function"]["CodeUri"] = "s3://vss-restore-build/functions.zip"
    for body in template["Resources"].values():
        if body.get("Type") == "AWS::Serverless::StateMachine":
            body["Properties"]["DefinitionUri"] = "s3://vss-restore-build/restore.asl.json"
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        boto_session=Session(region_name=region),
    )
    translated = translator.translate(
        sam_template=json.loads(json.dumps(template)),  # plain str, not SourceStr
        parameter_values={},
        get_managed_policy_map=lambda: MANAGED_POLICY_MAP,
    )
    return json.dumps(translated)


def synthesized(path: Path = TEMPLATE, region: str = REGION) -> dict[str, Any]:
    """A fresh copy of the CloudFormation template SAM makes of the template (template.yaml)."""
    loaded: dict[str, Any] = json.loads(_synthesized_text(path.resolve(), region))
    return loaded


# --- resolving the intrinsics ---------------------------------------------------------------


class _NoValue:
    """AWS::NoValue: the item or property disappears."""


NO_VALUE = _NoValue()


@dataclass
class Stack:
    """The synthesized template deployed with these parameter values in the test account.

    Physical names are the logical IDs unless `names` gives one (a moto table or topic).
    """

    parameters: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)
    path: Path = TEMPLATE
    region: str = REGION
    account: str = ACCOUNT

    def __post_init__(self) -> None:
        self.template = synthesized(self.path, self.region)
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
                "AWS::AccountId": self.account,
                "AWS::Region": self.region,
                "AWS::Partition": PARTITION,
                "AWS::StackName": STACK,
                "AWS::URLSuffix": "amazonaws.com",
            }
        )
        self._conditions: dict[str, bool] = {}

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:{PARTITION}:{service}:{self.region}:{self.account}:{resource}"

    # The values CloudFormation would give Ref and Fn::GetAtt for our resource types.
    def name(self, logical: str) -> str:
        return self.names.get(logical, logical)

    def ref(self, logical: str) -> str:
        if logical in self.values:
            return self.values[logical]
        kind = self.resources[logical]["Type"]
        name = self.name(logical)
        if kind == "AWS::SNS::Topic":
            return name if name.startswith("arn:") else self._arn("sns", name)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{name}"
        if kind == "AWS::StepFunctions::StateMachine":
            return self._arn("states", f"stateMachine:{name}")
        if kind == "AWS::IAM::ManagedPolicy":
            return f"arn:{PARTITION}:iam::{self.account}:policy/{name}"
        if kind == "AWS::Logs::LogGroup":
            return str(self.resolve(self.resources[logical]["Properties"]["LogGroupName"]))
        return name

    def get_att(self, logical: str, attribute: str) -> str:
        kind = self.resources[logical]["Type"]
        name = self.name(logical)
        arns = {
            "AWS::Lambda::Function": lambda: self._arn("lambda", f"function:{name}"),
            "AWS::DynamoDB::Table": lambda: self._arn("dynamodb", f"table/{name}"),
            "AWS::SQS::Queue": lambda: self._arn("sqs", name),
            "AWS::IAM::Role": lambda: f"arn:{PARTITION}:iam::{self.account}:role/{name}",
            "AWS::Logs::LogGroup": lambda: self._arn("logs", f"log-group:{self.ref(logical)}:*"),
            "AWS::StepFunctions::StateMachine": lambda: self.ref(logical),
            "AWS::Events::Rule": lambda: self._arn("events", f"rule/{name}"),
            "AWS::KMS::Key": lambda: self._arn("kms", f"key/{name}"),
            "AWS::IAM::InstanceProfile": lambda: (
                f"arn:{PARTITION}:iam::{self.account}:instance-profile/{name}"
            ),
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]()
        if attribute == "Name" and kind == "AWS::StepFunctions::StateMachine":
            return name
        if attribute == "TopicName" and kind == "AWS::SNS::Topic":
            return self.ref(logical).rsplit(":", 1)[-1]
        if attribute == "TopicArn" and kind == "AWS::SNS::Topic":
            return self.ref(logical)
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
        if name == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text)).split(separator)
        if name == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
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

    def _iam_resources(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(logical ID, type, resolved properties) of every IAM resource the stack creates."""
        for logical, body in self.resources.items():
            if "Condition" in body and not self.condition(body["Condition"]):
                continue
            if (
                not body["Type"].startswith("AWS::IAM::")
                or body["Type"] == "AWS::IAM::InstanceProfile"
            ):
                continue  # a profile only carries a role, which is judged as the principal
            if body["Type"] in {"AWS::IAM::Policy", "AWS::IAM::User", "AWS::IAM::Group"}:
                raise NotImplementedError(f"{logical}: {body['Type']} is not modelled here")
            yield logical, body["Type"], self.resolve(body.get("Properties", {}))

    def policy_documents(self) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """Each role's inline policies and each managed policy, as deployed, by logical ID.

        A list of (policy name, policy document); a managed policy's name is its logical ID.
        """
        found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for logical, kind, properties in self._iam_resources():
            if kind == "AWS::IAM::Role":
                found[logical] = [
                    (policy["PolicyName"], policy["PolicyDocument"])
                    for policy in properties.get("Policies", [])
                ]
            elif kind == "AWS::IAM::ManagedPolicy":
                found[logical] = [(logical, _document(properties["PolicyDocument"]))]
        return found

    def principals(self) -> dict[str, "Principal"]:
        """Every principal with the statements it holds: a role's own, and those of the stack's
        customer managed policies it attaches (folded in, no longer principals of their own).

        `managed` keeps the AWS-managed policies only. A policy no role of the stack attaches
        (BackupInstancePolicy, for the backed-up instances' roles) stays a principal.
        """
        found = self.roles()
        ours = {
            self.ref(logical): principal
            for logical, principal in found.items()
            if self.resources[logical]["Type"] == "AWS::IAM::ManagedPolicy"
        }
        folded: set[str] = set()
        result: dict[str, Principal] = {}
        for name, principal in found.items():
            attached = [arn for arn in principal.managed if arn in ours]
            folded.update(ours[arn].name for arn in attached)
            result[name] = Principal(
                name,
                principal.trusted,
                tuple(arn for arn in principal.managed if arn not in ours),
                principal.statements + tuple(s for arn in attached for s in ours[arn].statements),
            )
        return {name: p for name, p in result.items() if name not in folded}

    def roles(self) -> dict[str, "Principal"]:
        """Every IAM role and managed policy the stack creates, by logical ID."""
        found: dict[str, Principal] = {}
        documents = self.policy_documents()
        for logical, kind, properties in self._iam_resources():
            statements = tuple(
                Statement.of(raw, policy)
                for policy, document in documents[logical]
                for raw in _statements(document)
            )
            if kind == "AWS::IAM::Role":
                trusted = sorted(
                    service
                    for raw in _statements(properties["AssumeRolePolicyDocument"])
                    for service in _as_list(raw.get("Principal", {}).get("Service", []))
                )
                found[logical] = Principal(
                    logical,
                    tuple(trusted),
                    tuple(properties.get("ManagedPolicyArns", [])),
                    statements,
                )
            else:
                found[logical] = Principal(logical, (), (), statements)
        return found


def _document(document: str | dict[str, Any]) -> dict[str, Any]:
    """A policy document, also when written as JSON text (through Fn::Sub)."""
    if isinstance(document, str):
        loaded: dict[str, Any] = json.loads(document)
        return loaded
    return document


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
    not_actions: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()

    @classmethod
    def of(cls, raw: Mapping[str, Any], policy: str) -> "Statement":
        unknown = set(raw) - _STATEMENT_ELEMENTS
        if unknown:
            raise NotImplementedError(f"{policy}: {sorted(unknown)} in an identity policy")
        if ("Action" in raw) == ("NotAction" in raw) or ("Resource" in raw) == (
            "NotResource" in raw
        ):
            raise ValueError(
                f"{policy}: a statement has Action or NotAction, Resource or NotResource"
            )
        if raw["Effect"] not in {"Allow", "Deny"}:
            raise ValueError(f"{policy}: Effect {raw['Effect']!r}")
        return cls(
            sid=str(raw.get("Sid", "")),
            effect=str(raw["Effect"]),
            actions=tuple(str(a) for a in _as_list(raw.get("Action", []))),
            resources=tuple(str(r) for r in _as_list(raw.get("Resource", []))),
            condition=dict(raw.get("Condition", {})),
            policy=policy,
            not_actions=tuple(str(a) for a in _as_list(raw.get("NotAction", []))),
            not_resources=tuple(str(r) for r in _as_list(raw.get("NotResource", []))),
        )

    def key(self) -> str:
        """The statement as text, to compare statements (conditions are dicts)."""
        return json.dumps(
            [
                self.sid,
                self.effect,
                self.actions,
                self.resources,
                self.condition,
                self.not_actions,
                self.not_resources,
            ]
        )

    def matches_action(self, action: str) -> bool:
        if self.not_actions:
            return not any(wildcards.matches(action, p, ignore_case=True) for p in self.not_actions)
        return any(wildcards.matches(action, p, ignore_case=True) for p in self.actions)


# Principal and NotPrincipal belong in resource-based policies, never in a role's own.
_STATEMENT_ELEMENTS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
}


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
