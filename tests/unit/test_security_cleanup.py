"""Issue #5: the cleanup paths never detach or delete a volume that is not ours, even when an
execution is pointed at one, with each handler held to its own synthesized IAM policy.

The handlers run against moto as in the other unit tests; tests/security/enforce.py judges
every EC2, DynamoDB and SNS call they make against their role in the template SAM
synthesizes, and refuses what AWS would refuse. So each case shows both layers: what the
code chooses not to touch, and what IAM would stop if the code tried.
"""

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.security.enforce import Call, Enforcer
from tests.security.iam import Stack, principals
from vss_restore import tags
from vss_restore.errors import CleanupPending
from vss_restore.handlers import claim_snapshot, clean_up, release_execution

LEDGER_TABLE = "vss-restore-unit-Ledger"  # tests/unit/conftest.py's

MUTATING = {"ec2:AttachVolume", "ec2:DetachVolume", "ec2:DeleteVolume"}


@pytest.fixture
def as_role(world: Any, alert_topic: Any) -> Iterator[Callable[[str], Enforcer]]:
    """`as_role("CleanUpFunctionRole")`: from then on, the handlers' calls are judged."""
    stack = Stack(names={"Ledger": LEDGER_TABLE, "AlertTopic": alert_topic.arn})
    roles = principals(stack)  # the verdict tags come from an attached policy
    started: list[Any] = []

    def start(role: str) -> Enforcer:
        enforcer = Enforcer(roles[role])
        # The clients the handlers build (tests/unit/conftest.py gives them one per service).
        block = enforcer.on(boto3.client("ec2"), boto3.client("dynamodb"), boto3.client("sns"))
        block.__enter__()
        started.append(block)
        return enforcer

    yield start
    for block in started:
        block.__exit__(None, None, None)


def _touching(calls: list[Call], volume_id: str) -> list[Call]:
    return [c for c in calls if c.action in MUTATING and any(volume_id in r for r in c.resources)]


def _attachment(world: Any, volume_id: str) -> tuple[str, str]:
    [attachment] = world.volume(volume_id)["Attachments"]
    return attachment["InstanceId"], attachment["State"]


# Tagged with our execution or our source snapshot, but not vss-restore:resource.
LOOKALIKES = {
    "execution-tag-only": {tags.EXECUTION: "<execution>"},
    "source-snapshot-tag-only": {tags.SOURCE_SNAPSHOT: "<snapshot>"},
    "both-but-not-the-resource-tag": {
        tags.EXECUTION: "<execution>",
        tags.SOURCE_SNAPSHOT: "<snapshot>",
    },
}


def _lookalike(world: Any, which: str) -> str:
    volume_tags = {
        key: value.replace("<execution>", world.execution).replace("<snapshot>", world.snapshot_id)
        for key, value in LOOKALIKES[which].items()
    }
    volume_id = str(world.temporary_volume(volume_tags=volume_tags))
    world.attach(volume_id, "xvdf")
    return volume_id


# --- the control: our own volume is removed, every call allowed ---------------------------------


def test_the_cleanup_removes_our_volume_with_no_call_its_role_lacks(
    world: Any, lambda_context: Any, as_role: Callable[[str], Enforcer]
) -> None:
    volume_id = world.temporary_volume()
    world.attach(volume_id, "xvdf")
    event = world.event("clean_up", volume=volume_id)
    role = as_role("CleanUpFunctionRole")

    with pytest.raises(CleanupPending):
        clean_up.handler(event, lambda_context)
    clean_up.handler(event, lambda_context)  # the Retry, once moto's detach is done

    assert world.volume(volume_id) is None
    assert role.denied == []
    assert {"ec2:DetachVolume", "ec2:DeleteVolume", "sns:Publish"} <= {c.action for c in role.calls}


def test_the_release_removes_our_volume_with_no_call_its_role_lacks(
    world: Any, lambda_context: Any, as_role: Callable[[str], Enforcer]
) -> None:
    claim_snapshot.handler(world.event("claim_snapshot"), lambda_context)
    volume_id = world.temporary_volume()  # detached already: deleted at once
    role = as_role("ReleaseExecutionFunctionRole")

    summary = release_execution.handler(world.event("release_execution"), lambda_context)

    assert summary["volumes_removed"] == [volume_id]
    assert world.volume(volume_id) is None
    assert role.denied == []
    assert {"dynamodb:Query", "ec2:CreateTags", "ec2:DeleteVolume"} <= {
        c.action for c in role.calls
    }


# --- a volume that only looks like ours ---------------------------------------------------------


@pytest.mark.parametrize("which", sorted(LOOKALIKES))
def test_the_cleanup_pointed_at_a_lookalike_leaves_it_attached(
    world: Any, lambda_context: Any, as_role: Callable[[str], Enforcer], which: str
) -> None:
    volume_id = _lookalike(world, which)
    role = as_role("CleanUpFunctionRole")

    verdict = clean_up.handler(world.event("clean_up", volume=volume_id), lambda_context)

    assert _attachment(world, volume_id) == (world.helper_id, "attached")
    assert _touching(role.calls, volume_id) == []  # the code never asked
    assert verdict["status"] == tags.FAILED
    assert role.denied == []


@pytest.mark.parametrize("which", sorted(LOOKALIKES))
def test_the_release_of_its_execution_leaves_a_lookalike_attached(
    world: Any, lambda_context: Any, as_role: Callable[[str], Enforcer], which: str
) -> None:
    claim_snapshot.handler(world.event("claim_snapshot"), lambda_context)
    volume_id = _lookalike(world, which)
    role = as_role("ReleaseExecutionFunctionRole")

    summary = release_execution.handler(world.event("release_execution"), lambda_context)

    assert _attachment(world, volume_id) == (world.helper_id, "attached")
    assert _touching(role.calls, volume_id) == []
    assert summary["volumes_removed"] == []
    assert role.denied == []


# --- our volume, but attached to an instance that is not a helper -------------------------------
# The code force-detaches whatever our volume is attached to; IAM refuses a detach from an
# instance without vss-restore:helper=true, so the volume stays where it is.


def _ours_on_another_instance(world: Any) -> tuple[str, str]:
    file_server = world.launch(instance_tags={"Name": "the file server"})
    volume_id = str(world.temporary_volume())
    world.attach(volume_id, "xvdg", instance_id=file_server)
    return volume_id, file_server


def test_the_cleanup_cannot_detach_our_volume_from_an_instance_that_is_not_a_helper(
    world: Any, lambda_context: Any, as_role: Callable[[str], Enforcer]
) -> None:
    volume_id, file_server = _ours_on_another_instance(world)
    role = as_role("CleanUpFunctionRole")

    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        clean_up.handler(world.event("clean_up", volume=volume_id), lambda_context)

    assert _attachment(world, volume_id) == (file_server, "attached")
    assert [(c.action, c.allowed) for c in _touching(role.calls, volume_id)] == [
        ("ec2:DetachVolume", False)
    ]
    # The verdict comes first, so the snapshot says failed all the same.
    assert world.snapshot_tags(world.snapshot_id)[tags.STATUS] == tags.FAILED


def test_the_release_cannot_detach_our_volume_from_an_instance_that_is_not_a_helper(
    world: Any, lambda_context: Any, as_role: Callable[[str], Enforcer]
) -> None:
    claim_snapshot.handler(world.event("claim_snapshot"), lambda_context)
    volume_id, file_server = _ours_on_another_instance(world)
    role = as_role("ReleaseExecutionFunctionRole")

    summary = release_execution.handler(world.event("release_execution"), lambda_context)

    assert _attachment(world, volume_id) == (file_server, "attached")
    assert [(c.action, c.allowed) for c in _touching(role.calls, volume_id)] == [
        ("ec2:DetachVolume", False)
    ]
    [left] = summary["left"]
    assert volume_id in left
    assert "UnauthorizedOperation" in left
