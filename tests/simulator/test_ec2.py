"""EBS takes time and says no where AWS does: what moto alone would not show."""

import pytest
from botocore.exceptions import ClientError

from tests.simulator.harness import Aws


def _new_volume(aws: Aws, **extra: object) -> str:
    return str(aws.ec2.create_volume(AvailabilityZone=aws.zone, Size=8, **extra)["VolumeId"])


def test_a_new_volume_is_creating_for_a_while_then_available(aws: Aws) -> None:
    volume_id = _new_volume(aws)
    assert aws.volume(volume_id)["State"] == "creating"
    with pytest.raises(ClientError, match="IncorrectState"):
        aws.ec2.attach_volume(VolumeId=volume_id, InstanceId=aws.helper_id, Device="xvdf")
    aws.clock.advance(2)
    assert aws.volume(volume_id)["State"] == "available"


def test_attach_and_detach_take_seconds_and_show_their_states(aws: Aws) -> None:
    volume_id = _new_volume(aws)
    aws.clock.advance(2)
    aws.ec2.attach_volume(VolumeId=volume_id, InstanceId=aws.helper_id, Device="xvdf")
    assert aws.volume(volume_id)["Attachments"][0]["State"] == "attaching"
    aws.clock.advance(3)
    assert aws.volume(volume_id)["Attachments"][0]["State"] == "attached"

    aws.ec2.detach_volume(VolumeId=volume_id, InstanceId=aws.helper_id)
    detaching = aws.volume(volume_id)
    assert detaching["State"] == "in-use"
    assert detaching["Attachments"][0]["State"] == "detaching"
    with pytest.raises(ClientError, match="VolumeInUse"):
        aws.ec2.delete_volume(VolumeId=volume_id)
    aws.clock.advance(3)
    assert aws.volume(volume_id)["State"] == "available"
    aws.ec2.delete_volume(VolumeId=volume_id)


def test_a_device_name_in_use_is_refused_as_aws_refuses_it(aws: Aws) -> None:
    first, second = _new_volume(aws), _new_volume(aws)
    aws.clock.advance(2)
    aws.ec2.attach_volume(VolumeId=first, InstanceId=aws.helper_id, Device="xvdf")
    with pytest.raises(ClientError, match="Attachment point xvdf is already in use"):
        aws.ec2.attach_volume(VolumeId=second, InstanceId=aws.helper_id, Device="xvdf")


def test_a_volume_must_be_in_the_instances_zone(aws: Aws) -> None:
    volume_id = str(aws.ec2.create_volume(AvailabilityZone="us-east-1b", Size=8)["VolumeId"])
    aws.clock.advance(2)
    with pytest.raises(ClientError, match=r"InvalidVolume\.ZoneMismatch"):
        aws.ec2.attach_volume(VolumeId=volume_id, InstanceId=aws.helper_id, Device="xvdf")


def test_a_snapshot_is_pending_and_sends_its_event_when_completed(aws: Aws) -> None:
    volume_id = _new_volume(aws)
    aws.clock.advance(2)
    snapshot_id = aws.ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    assert aws.snapshot_state(snapshot_id) == "pending"
    with pytest.raises(ClientError, match="IncorrectState"):
        aws.ec2.create_volume(AvailabilityZone=aws.zone, SnapshotId=snapshot_id)
    assert aws.world.pop_due_events() == []

    aws.clock.advance(181)
    assert aws.snapshot_state(snapshot_id) == "completed"
    (event,) = aws.world.pop_due_events()
    assert event["detail-type"] == "EBS Snapshot Notification"
    assert event["detail"]["event"] == "createSnapshot"
    assert event["detail"]["result"] == "succeeded"
    assert event["detail"]["snapshot_id"] == f"arn:aws:ec2:us-east-1::snapshot/{snapshot_id}"
    assert event["detail"]["source"].endswith(f":volume/{volume_id}")


def test_a_pending_snapshot_deleted_goes_only_once_completed_and_still_sends_its_event(
    aws: Aws,
) -> None:
    # EBS User Guide, "Delete an Amazon EBS snapshot": "Although you can delete a snapshot
    # that is still in progress, the snapshot must complete before the deletion takes effect."
    volume_id = _new_volume(aws)
    aws.clock.advance(2)
    snapshot_id = aws.ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    aws.clock.advance(60)

    aws.ec2.delete_snapshot(SnapshotId=snapshot_id)
    assert aws.snapshot_state(snapshot_id) == "pending"
    aws.ec2.delete_snapshot(SnapshotId=snapshot_id)  # a retried cleanup's second call
    aws.clock.advance(119)
    assert aws.snapshot_state(snapshot_id) == "pending"
    assert aws.world.pop_due_events() == []

    aws.clock.advance(2)
    with pytest.raises(ClientError, match=r"InvalidSnapshot\.NotFound"):
        aws.ec2.describe_snapshots(SnapshotIds=[snapshot_id])
    assert aws.world.snapshots_deleted.count(snapshot_id) == 1
    # Its completion event is still sent (unverified on a real account: docs/simulated.md).
    (event,) = aws.world.pop_due_events()
    assert event["detail"]["result"] == "succeeded"
    assert event["detail"]["snapshot_id"].endswith(f"/{snapshot_id}")
    with pytest.raises(ClientError, match=r"InvalidSnapshot\.NotFound"):
        aws.ec2.delete_snapshot(SnapshotId=snapshot_id)


def test_the_same_client_token_gives_the_same_volume(aws: Aws) -> None:
    first = _new_volume(aws, ClientToken="execution-1")
    assert _new_volume(aws, ClientToken="execution-1") == first
    with pytest.raises(ClientError, match="IdempotentParameterMismatch"):
        aws.ec2.create_volume(AvailabilityZone=aws.zone, Size=9, ClientToken="execution-1")


@pytest.mark.parametrize(
    "aws",
    [[{"action": "ec2:CreateVolume", "error": "RequestLimitExceeded", "times": 2}]],
    indirect=True,
)
def test_an_api_fault_hits_the_next_calls_then_stops(aws: Aws) -> None:
    for _ in range(2):
        with pytest.raises(ClientError) as raised:
            _new_volume(aws)
        assert raised.value.response["Error"]["Code"] == "RequestLimitExceeded"
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert _new_volume(aws).startswith("vol-")
    assert aws.faults.hits == ["api ec2:createvolume"] * 2


@pytest.mark.parametrize(
    "aws",
    [
        [
            {"timing": "volume_available_seconds", "seconds": 240},
            {"outcome": "snapshot_error", "message": "Internal error"},
        ]
    ],
    indirect=True,
)
def test_timing_and_outcome_faults_hit_the_next_resource(aws: Aws) -> None:
    slow, normal = _new_volume(aws), _new_volume(aws)
    aws.clock.advance(2)
    assert aws.volume(slow)["State"] == "creating"
    assert aws.volume(normal)["State"] == "available"
    aws.clock.advance(238)
    assert aws.volume(slow)["State"] == "available"

    snapshot_id = aws.ec2.create_snapshot(VolumeId=normal)["SnapshotId"]
    aws.clock.advance(181)
    assert aws.snapshot_state(snapshot_id) == "error"
    (event,) = aws.world.pop_due_events()
    assert event["detail"]["result"] == "failed"


def _tagged_volumes(aws: Aws, count: int) -> list[str]:
    tagged = [{"ResourceType": "volume", "Tags": [{"Key": "team", "Value": "ours"}]}]
    return [_new_volume(aws, TagSpecifications=tagged) for _ in range(count)]


def test_describe_volumes_pages_by_max_results_with_its_next_token(aws: Aws) -> None:
    made = _tagged_volumes(aws, 7)
    _new_volume(aws)  # not tagged: the filter leaves it out
    ours = [{"Name": "tag:team", "Values": ["ours"]}]

    first = aws.ec2.describe_volumes(Filters=ours, MaxResults=5)
    second = aws.ec2.describe_volumes(Filters=ours, MaxResults=5, NextToken=first["NextToken"])

    assert len(first["Volumes"]) == 5
    assert "NextToken" not in second
    assert sorted(v["VolumeId"] for v in first["Volumes"] + second["Volumes"]) == sorted(made)


def test_describe_volumes_gives_at_most_500_a_page(aws: Aws) -> None:
    _tagged_volumes(aws, 501)

    page = aws.ec2.describe_volumes(
        Filters=[{"Name": "tag:team", "Values": ["ours"]}], MaxResults=1000
    )

    assert len(page["Volumes"]) == 500
    assert "NextToken" in page


@pytest.mark.parametrize(
    ("request_params", "code"),
    [
        ({"MaxResults": 4}, "InvalidParameterValue"),
        ({"MaxResults": 5, "VolumeIds": ["<volume>"]}, "InvalidParameterCombination"),
    ],
)
def test_describe_volumes_refuses_what_its_reference_refuses(
    aws: Aws, request_params: dict[str, object], code: str
) -> None:
    volume_id = _new_volume(aws)
    params = {k: [volume_id] if k == "VolumeIds" else v for k, v in request_params.items()}
    with pytest.raises(ClientError, match=code):
        aws.ec2.describe_volumes(**params)
