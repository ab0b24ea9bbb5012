"""An encrypted snapshot whose key cannot be used is refused before any volume exists."""

from typing import Any

import boto3
import pytest

from vss_restore.errors import KeyNotUsable
from vss_restore.handlers import create_volume


def _volumes(world: Any) -> list[dict[str, Any]]:
    return list(
        world.ec2.describe_volumes(
            Filters=[{"Name": "tag:vss-restore:resource", "Values": ["temporary-volume"]}]
        )["Volumes"]
    )


def _event_with_key(world: Any, key_id: str) -> dict[str, Any]:
    event = world.event("create_volume")
    event["source"]["kms_key_id"] = key_id
    return event


@pytest.fixture
def kms(world: Any) -> Any:
    return boto3.client("kms")


def test_a_snapshot_under_an_enabled_key_is_restored(
    world: Any, kms: Any, lambda_context: Any
) -> None:
    key_id = kms.create_key(Description="backups")["KeyMetadata"]["Arn"]

    result = create_volume.handler(_event_with_key(world, key_id), lambda_context)

    # under the snapshot's own key, named: its consistent snapshot stays incremental (#16)
    (volume,) = _volumes(world)
    assert volume["VolumeId"] == result["volume_id"]
    assert (volume["Encrypted"], volume["KmsKeyId"]) == (True, key_id)


@pytest.mark.parametrize("state", ["disabled", "pending-deletion"])
def test_a_snapshot_under_a_key_that_is_off_creates_nothing(
    world: Any, kms: Any, lambda_context: Any, state: str
) -> None:
    key_id = kms.create_key(Description="backups")["KeyMetadata"]["KeyId"]
    if state == "disabled":
        kms.disable_key(KeyId=key_id)
    else:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)

    with pytest.raises(KeyNotUsable, match=f"encrypted with {key_id}, which is"):
        create_volume.handler(_event_with_key(world, key_id), lambda_context)
    assert _volumes(world) == []


def test_a_snapshot_under_a_key_we_cannot_see_creates_nothing(
    world: Any, lambda_context: Any
) -> None:
    missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000"

    with pytest.raises(KeyNotUsable, match="is encrypted with"):
        create_volume.handler(_event_with_key(world, missing), lambda_context)
    assert _volumes(world) == []
