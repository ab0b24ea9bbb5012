"""Which AWS API calls each adapter method makes, read from the adapters' source.

An adapter (functions/vss_restore/aws/*.py) is a class whose `client` property builds one
boto3 client; its methods call `self.client.<operation>(...)`,
`self.client.get_paginator("<operation>")` and each other (`self._item(...)`). This walks
those calls (through the private helpers) and names each as the IAM action it needs,
`<signing name>:<OperationName>` from botocore's service model. A create call given
`TagSpecifications` also needs `<service>:CreateTags` (tags at creation are authorized as
CreateTags with ec2:CreateAction).
"""

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import botocore.session
from botocore import xform_name

ADAPTERS = Path(__file__).resolve().parents[2] / "functions" / "vss_restore" / "aws"
# DynamoDB authorizes each item of a transaction as its own action ("Using IAM with DynamoDB
# transactions"); TransactWriteItems itself is no IAM action. A method that builds a
# transaction item (a dict literal keyed by the item's kind) needs that item's action.
TRANSACTION_ITEMS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
NOT_IAM_ACTIONS = {"dynamodb:TransactWriteItems"}


@dataclass(frozen=True)
class Adapter:
    name: str  # the class, e.g. "Ec2"
    service: str  # the boto3 service name, e.g. "ec2"
    direct: dict[str, frozenset[str]]  # method -> the IAM actions it calls itself
    helpers: dict[str, frozenset[str]]  # method -> the other methods of the class it calls

    def actions(self, method: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
        """Every IAM action the method needs, its helpers' included."""
        if method not in self.direct:
            raise KeyError(f"{self.name} has no method {method}")
        found = set(self.direct[method])
        for helper in self.helpers[method] - seen - {method}:
            found |= self.actions(helper, seen | {method})
        return frozenset(found)

    @property
    def public_methods(self) -> list[str]:
        return sorted(m for m in self.direct if not m.startswith("_") and m != "client")


@functools.cache
def _operations(service: str) -> tuple[str, dict[str, str]]:
    """The service's IAM prefix and its operations by boto3 method name."""
    model = botocore.session.get_session().get_service_model(service)
    prefix = model.signing_name or model.endpoint_prefix
    return prefix, {xform_name(op): op for op in model.operation_names}


def _is_self_client(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "client"
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


def _service_of(cls: ast.ClassDef) -> str | None:
    for node in ast.walk(cls):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "client"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "boto3"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            return str(node.args[0].value)
    return None


def _walk_method(method: ast.FunctionDef, service: str) -> tuple[set[str], set[str]]:
    prefix, operations = _operations(service)
    actions: set[str] = set()
    helpers: set[str] = set()
    for node in ast.walk(method):
        if service == "dynamodb" and isinstance(node, ast.Dict):
            for key in node.keys:
                if isinstance(key, ast.Constant) and key.value in TRANSACTION_ITEMS:
                    actions.add(TRANSACTION_ITEMS[str(key.value)])
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        target, name = node.func.value, node.func.attr
        if _is_self_client(target):
            if name == "get_paginator":
                argument = node.args[0]
                if not isinstance(argument, ast.Constant):
                    raise ValueError(f"{method.name}: a paginator whose operation is not literal")
                name = str(argument.value)
            if name not in operations:
                raise ValueError(f"{method.name}: {service} has no operation {name}")
            if f"{prefix}:{operations[name]}" not in NOT_IAM_ACTIONS:
                actions.add(f"{prefix}:{operations[name]}")
            if any(k.arg == "TagSpecifications" for k in node.keywords):
                actions.add(f"{prefix}:CreateTags")
        elif isinstance(target, ast.Name) and target.id == "self":
            helpers.add(name)
    return actions, helpers


@functools.cache
def adapters() -> dict[str, Adapter]:
    """Every adapter class in functions/vss_restore/aws/, by class name."""
    found: dict[str, Adapter] = {}
    for path in sorted(ADAPTERS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            service = _service_of(cls)
            if service is None:
                continue  # a data class, not an adapter
            direct: dict[str, frozenset[str]] = {}
            helpers: dict[str, frozenset[str]] = {}
            for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
                actions, called = _walk_method(method, service)
                direct[method.name] = frozenset(actions)
                helpers[method.name] = frozenset(called)
            found[cls.name] = Adapter(cls.name, service, direct, helpers)
    return found


def actions_of(*methods: str) -> frozenset[str]:
    """The IAM actions of adapter methods named "Class.method"."""
    found: set[str] = set()
    for qualified in methods:
        cls, method = qualified.split(".", 1)
        found |= adapters()[cls].actions(method)
    return frozenset(found)
