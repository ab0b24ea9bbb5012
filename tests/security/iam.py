"""The per-principal table SECURITY.md holds, and the names tests/security uses.

The policies, their resolution and the evaluator live in simulator/iam/, where the simulator
enforces them on every call; the tests ask them what an attacker could do.

Run as a module to print the table:
    PYTHONPATH=functions:. .venv/bin/python -m tests.security.iam
"""

import re
from collections.abc import Mapping

from simulator.iam.evaluate import Request, Resource, allows, statement_applies
from simulator.iam.stack import (
    ACCOUNT,
    PARTITION,
    REGION,
    REPO,
    STACK,
    TEMPLATE,
    Principal,
    Stack,
    Statement,
    _as_list,
    is_read_only,
    load_template,
    synthesized,
)

__all__ = [
    "ACCOUNT",
    "PARTITION",
    "REGION",
    "REPO",
    "STACK",
    "TEMPLATE",
    "Principal",
    "Request",
    "Resource",
    "Stack",
    "Statement",
    "allows",
    "is_read_only",
    "load_template",
    "principals",
    "statement_applies",
    "synthesized",
    "table",
]


# --- what each principal may do, attached policies included --------------------------------


def principals(stack: Stack) -> dict[str, Principal]:
    """Every principal with the statements it holds (Stack.principals)."""
    return stack.principals()


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


# The settings that add deleting (and, with the helper fleet, launching and terminating)
# permissions: the widest deployment sets them all.
WIDEST = {
    "DeleteOrphanVolumes": "true",
    "DeleteExpiredSnapshots": "true",
    "HelperMode": "fleet",
    "HelperSubnetIds": "subnet-0aaa1111bbb22233a,subnet-0aaa1111bbb22233b",
    "HelperVpcId": "vpc-0aaa1111bbb222333",
    "BootTest": "Weekly",
    "BootTestEndpointSecurityGroupId": "sg-0aaa1111bbb222334",
}

# The same settings at their narrowest (the fleet's subnets and VPC follow HelperMode).
NARROWEST = {
    "DeleteOrphanVolumes": "false",
    "DeleteExpiredSnapshots": "false",
    "HelperMode": "named",
    "BootTest": "Never",
}
# What a setting needs besides itself to add its statements (the boot test launches as the
# fleet does: docs/boot-test.md).
NEEDS = {
    "BootTest": {
        "HelperMode": "fleet",
        "HelperSubnetIds": WIDEST["HelperSubnetIds"],
        "HelperVpcId": WIDEST["HelperVpcId"],
    }
}


def table(parameters: Mapping[str, str] | None = None) -> str:
    """Markdown: for every principal, each statement's actions, resources and conditions.

    Statements that exist only with DeleteOrphanVolumes=true, DeleteExpiredSnapshots=true or
    HelperMode=fleet are marked so.
    """
    given = dict(parameters or {})
    with_deletes = Stack({**given, **WIDEST}).roles()
    only_with = {
        name: Stack({**given, **NARROWEST, **NEEDS.get(name, {}), name: WIDEST[name]}).roles()
        for name in NARROWEST
    }
    without = Stack({**given, **NARROWEST}).roles()
    lines = [
        "| principal | actions | resources | conditions |",
        "|---|---|---|---|",
    ]
    for name, principal in sorted(with_deletes.items()):
        baseline = {s.key() for s in without[name].statements} if name in without else set()
        managed = ", ".join(arn.rsplit("/", 1)[-1] for arn in principal.managed)
        who = f"**{name}**" + (f" (+ {managed})" if managed else "")
        for statement in principal.statements:
            only = ""
            if statement.key() not in baseline:
                setting = next(
                    (
                        k
                        for k, roles in only_with.items()
                        if name in roles
                        and statement.key() in {s.key() for s in roles[name].statements}
                    ),
                    "a setting",
                )
                only = f" (only with {setting}={WIDEST.get(setting, 'true')})"
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
