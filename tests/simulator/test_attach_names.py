"""The attach reads free names off the helper's mappings and lets EC2's refusal of a busy
name (an attach or a detach the mappings do not show) move it to the next: no
DescribeVolumes when all goes well."""

from typing import Any

import pytest

from tests.simulator.harness import Aws
from vss_restore import steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.errors import DeviceNameTaken, VolumeAlreadyAttached


def _volume(aws: Aws) -> str:
    volume_id = str(aws.ec2.create_volume(AvailabilityZone=aws.zone, Size=8)["VolumeId"])
    aws.clock.advance(2)
    return volume_id


def _calls(aws: Aws, operation: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    aws.ec2.meta.events.register(
        f"provide-client-params.ec2.{operation}", lambda params, **_: seen.append(params)
    )
    return seen


def test_a_name_still_held_by_a_detaching_volume_is_refused_and_the_next_one_taken(
    aws: Aws,
) -> None:
    leaving = _volume(aws)
    aws.ec2.attach_volume(VolumeId=leaving, InstanceId=aws.helper_id, Device="xvdf")
    aws.clock.advance(3)
    aws.ec2.detach_volume(VolumeId=leaving, InstanceId=aws.helper_id)
    volume_id = _volume(aws)
    looks = _calls(aws, "DescribeVolumes")
    attaches = _calls(aws, "AttachVolume")

    device = steps.attach_volume(Ec2(aws.ec2), volume_id, aws.helper_id)

    assert device == "xvdg"
    assert [a["Device"] for a in attaches] == ["xvdf", "xvdg"]
    assert looks == []


def test_an_attach_on_time_makes_no_describe_volumes(aws: Aws) -> None:
    volume_id = _volume(aws)
    looks = _calls(aws, "DescribeVolumes")

    assert steps.attach_volume(Ec2(aws.ec2), volume_id, aws.helper_id) == "xvdf"

    assert looks == []
    assert aws.volume(volume_id)["Attachments"][0]["Device"] == "xvdf"


def test_names_refused_three_times_hand_the_attach_back_to_the_state_machine(aws: Aws) -> None:
    busy = {device: _volume(aws) for device in ("xvdf", "xvdg", "xvdh")}
    volume_id = _volume(aws)
    for device, busy_id in busy.items():
        aws.ec2.attach_volume(VolumeId=busy_id, InstanceId=aws.helper_id, Device=device)
    aws.clock.advance(3)
    for busy_id in busy.values():
        aws.ec2.detach_volume(VolumeId=busy_id, InstanceId=aws.helper_id)

    with pytest.raises(DeviceNameTaken):
        steps.attach_volume(Ec2(aws.ec2), volume_id, aws.helper_id)

    assert aws.volume(volume_id)["Attachments"] == []


def test_a_volume_attached_to_another_instance_is_not_taken_for_an_earlier_attach(
    aws: Aws,
) -> None:
    image = aws.ec2.describe_instances(InstanceIds=[aws.helper_id])["Reservations"][0]["Instances"][
        0
    ]["ImageId"]
    other = aws.ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, Placement={"AvailabilityZone": aws.zone}
    )["Instances"][0]["InstanceId"]
    volume_id = _volume(aws)
    aws.ec2.attach_volume(VolumeId=volume_id, InstanceId=other, Device="xvdf")

    with pytest.raises(VolumeAlreadyAttached, match=f"not to {aws.helper_id}"):
        steps.attach_volume(Ec2(aws.ec2), volume_id, aws.helper_id)

    assert [a["InstanceId"] for a in aws.volume(volume_id)["Attachments"]] == [other]
