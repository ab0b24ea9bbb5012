"""The AWS adapters turn AWS error codes into the named errors the state machine handles."""

from typing import Any

import pytest
from botocore.exceptions import ClientError

from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ssm import Ssm
from vss_restore.errors import AwsThrottled, DeviceNameTaken, SnapshotNotFound, TransientError

SNAPSHOT = "snap-0a1b2c3d4e5f60718"
VOLUME = "vol-0123456789abcdef0"
INSTANCE = "i-0abc1234def567890"
COMMAND = "2f9d1c4e-8b7a-4c3d-9e2f-1a2b3c4d5e6f"


@pytest.fixture
def ec2(stubbed: Any) -> tuple[Ec2, Any]:
    client, stubber = stubbed("ec2")
    return Ec2(client=client), stubber


@pytest.fixture
def ssm(stubbed: Any) -> tuple[Ssm, Any]:
    client, stubber = stubbed("ssm")
    return Ssm(client=client), stubber


@pytest.mark.parametrize("code", ["RequestLimitExceeded", "Throttling"])
def test_ec2_throttling_becomes_aws_throttled_which_the_workflow_retries(
    ec2: Any, code: str
) -> None:
    adapter, stubber = ec2
    stubber.add_client_error("describe_snapshots", service_error_code=code, http_status_code=503)

    with pytest.raises(AwsThrottled, match=code) as raised:
        adapter.snapshot(SNAPSHOT)

    assert isinstance(raised.value, TransientError)
    assert isinstance(raised.value.__cause__, ClientError)


def test_ssm_throttling_becomes_aws_throttled(ssm: Any) -> None:
    adapter, stubber = ssm
    stubber.add_client_error(
        "send_command", service_error_code="ThrottlingException", http_status_code=400
    )

    with pytest.raises(AwsThrottled, match="ThrottlingException"):
        adapter.send_command(
            document="vss-restore-DiskTool",
            instance_id=INSTANCE,
            parameters={"Action": ["Inspect"]},
            timeout_seconds=600,
            comment="vss-restore Inspect",
        )


def test_a_device_name_taken_by_another_attach_becomes_device_name_taken(ec2: Any) -> None:
    adapter, stubber = ec2
    stubber.add_client_error(
        "attach_volume",
        service_error_code="InvalidParameterValue",
        service_message=(
            "Invalid value 'xvdf' for unixDevice. Attachment point xvdf is already in use"
        ),
        http_status_code=400,
        expected_params={"VolumeId": VOLUME, "InstanceId": INSTANCE, "Device": "xvdf"},
    )

    with pytest.raises(DeviceNameTaken, match=f"xvdf on {INSTANCE}") as raised:
        adapter.attach_volume(VOLUME, INSTANCE, "xvdf")

    assert isinstance(raised.value, TransientError)


def test_another_attach_error_is_not_mistaken_for_a_taken_device(ec2: Any) -> None:
    adapter, stubber = ec2
    stubber.add_client_error(
        "attach_volume",
        service_error_code="IncorrectState",
        service_message=f"{VOLUME} is not 'available'.",
        http_status_code=400,
    )

    with pytest.raises(ClientError, match="IncorrectState"):
        adapter.attach_volume(VOLUME, INSTANCE, "xvdf")


def test_an_invocation_ssm_does_not_know_yet_is_none(ssm: Any) -> None:
    adapter, stubber = ssm
    stubber.add_client_error(
        "get_command_invocation",
        service_error_code="InvocationDoesNotExist",
        http_status_code=400,
        expected_params={"CommandId": COMMAND, "InstanceId": INSTANCE},
    )

    assert adapter.invocation(COMMAND, INSTANCE) is None


def test_an_instance_ssm_does_not_know_is_left_out(ssm: Any) -> None:
    adapter, stubber = ssm
    stubber.add_response("describe_instance_information", {"InstanceInformationList": []})

    assert adapter.instance_information([INSTANCE]) == {}


@pytest.mark.parametrize("code", ["InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed"])
def test_a_snapshot_that_cannot_be_found_is_snapshot_not_found(ec2: Any, code: str) -> None:
    adapter, stubber = ec2
    stubber.add_client_error("describe_snapshots", service_error_code=code, http_status_code=400)

    with pytest.raises(SnapshotNotFound, match=SNAPSHOT):
        adapter.snapshot(SNAPSHOT)


def test_an_error_without_a_message_still_says_what_is_wrong(ec2: Any) -> None:
    adapter, stubber = ec2
    stubber.add_client_error(
        "describe_snapshots", service_error_code="InvalidSnapshot.NotFound", service_message=""
    )

    with pytest.raises(SnapshotNotFound) as raised:
        adapter.snapshot(SNAPSHOT)
    assert str(raised.value) == f"{SNAPSHOT}: InvalidSnapshot.NotFound: no such snapshot"


def test_a_snapshot_not_visible_to_the_account_is_snapshot_not_found(ec2: Any) -> None:
    adapter, stubber = ec2
    stubber.add_response("describe_snapshots", {"Snapshots": []})

    with pytest.raises(SnapshotNotFound, match="not visible to this account"):
        adapter.snapshot(SNAPSHOT)


def test_a_volume_that_does_not_exist_is_none(ec2: Any) -> None:
    adapter, stubber = ec2
    stubber.add_client_error(
        "describe_volumes", service_error_code="InvalidVolume.NotFound", http_status_code=400
    )

    assert adapter.volume(VOLUME) is None


@pytest.mark.parametrize("code", ["InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"])
def test_an_instance_that_does_not_exist_is_none(ec2: Any, code: str) -> None:
    adapter, stubber = ec2
    stubber.add_client_error("describe_instances", service_error_code=code, http_status_code=400)

    assert adapter.instance(INSTANCE) is None


def test_a_permission_error_is_not_swallowed(ec2: Any) -> None:
    adapter, stubber = ec2
    stubber.add_client_error(
        "describe_volumes", service_error_code="UnauthorizedOperation", http_status_code=403
    )

    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        adapter.volume(VOLUME)
