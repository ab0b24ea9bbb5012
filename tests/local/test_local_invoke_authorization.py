"""`make local-invoke`'s containers call the simulator's moto server signed as their own role
(`credentials_for`): the server judges each request against that role, as AWS would, and
answers a refusal in the service's own error shape. No Docker needed: a client here signs
as a container would."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local.seeding import REGION, LocalAccount


@pytest.fixture(scope="module")
def account() -> Iterator[LocalAccount]:
    with LocalAccount("127.0.0.1") as seeded:
        yield seeded


def _client(account: LocalAccount, service: str, key: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=account.endpoint,
        aws_access_key_id=key,
        aws_secret_access_key="unused",
    )


def test_a_container_signed_as_its_role_may_make_its_calls_and_no_others(
    account: LocalAccount,
) -> None:
    key = account.credentials_for("VolumeStateFunction")
    ec2 = _client(account, "ec2", key)
    assert ec2.describe_volumes()["Volumes"]

    with pytest.raises(ClientError) as refused:
        ec2.delete_volume(VolumeId=account.orphan_volume)
    assert refused.value.response["Error"]["Code"] == "UnauthorizedOperation"
    assert (
        "assumed-role/VolumeStateFunctionRole/VolumeStateFunctionRole is not authorized to "
        "perform: ec2:DeleteVolume on resource: arn:aws:ec2:us-east-1:"
    ) in refused.value.response["Error"]["Message"]
    assert _client(account, "ec2", "testing").describe_volumes(VolumeIds=[account.orphan_volume])[
        "Volumes"
    ], "the refused delete must not have happened"

    with pytest.raises(ClientError) as denied:
        _client(account, "dynamodb", key).get_item(
            TableName="vss-restore-Ledger", Key={"pk": {"S": "snapshot#snap-1"}}
        )
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"

    judged = account.judged_calls({"VolumeStateFunction"})
    assert [(c.action, c.allowed) for c in judged] == [
        ("ec2:DescribeVolumes", True),
        ("ec2:DeleteVolume", False),
        ("dynamodb:GetItem", False),
    ]


def test_each_function_signs_with_a_key_of_its_own_shaped_as_awss(
    account: LocalAccount,
) -> None:
    keys = {account.credentials_for(f) for f in ("CreateVolumeFunction", "CleanUpFunction")}
    assert len(keys) == 2
    assert all(k.startswith("ASIA") and len(k) == 20 and k.isalnum() for k in keys)
