"""Handlers create_volume, volume_state, attach_volume, detach_volume and delete_volume."""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tools.cfn_template import load_template
from vss_restore import clock, steps, tags
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.kms import Kms
from vss_restore.errors import InvalidRequest, NotOurs, VolumeFailed
from vss_restore.handlers import (
    attach_volume,
    create_volume,
    delete_volume,
    detach_volume,
    volume_state,
)
from vss_restore.logic.helper import Helper
from vss_restore.logic.looks import OUR_FILTER, PAGE
from vss_restore.logic.polling import (
    IN_INVOCATION,
    LAST_CALL_SECONDS,
    VOLUME_FIRST_LOOK,
    pause_after,
)
from vss_restore.settings import Settings

REPO = Path(__file__).resolve().parents[2]
# The shared look's DescribeVolumes (looks.py): our temporary volumes, by tag, 500 a page.
SHARED_LOOK = {"Filters": [OUR_FILTER], "MaxResults": PAGE}


@dataclass
class PassingTime:
    """The handlers' clock for a test: sleeping moves it on, and what the test scheduled
    happens once its moment has come."""

    now: datetime = datetime(2026, 11, 25, 0, 5, tzinfo=UTC)
    slept: list[float] = field(default_factory=list)
    due: list[tuple[datetime, Callable[[], None]]] = field(default_factory=list)

    def after(self, seconds: float, happen: Callable[[], None]) -> None:
        self.due.append((self.now + timedelta(seconds=seconds), happen))

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)
        for moment, happen in [d for d in self.due if d[0] <= self.now]:
            self.due.remove((moment, happen))
            happen()


@pytest.fixture
def passing_time(monkeypatch: pytest.MonkeyPatch) -> PassingTime:
    time = PassingTime()
    monkeypatch.setattr(clock, "now", lambda: time.now)
    monkeypatch.setattr(clock, "sleep", time.sleep)
    return time


def _created_creating(world: Any, available_after: float | None, time: PassingTime) -> None:
    """The next CreateVolume's volume is `creating`, and available `available_after` s later
    (never if None): moto makes it available at once."""
    events = boto3.client("ec2").meta.events  # the handlers' client

    def creating(parsed: dict[str, Any], **_: Any) -> None:
        volume_id = parsed["VolumeId"]
        world.set_volume_state(volume_id, "creating")
        if available_after is not None:
            time.after(available_after, lambda: world.set_volume_state(volume_id, "available"))
        events.unregister("after-call.ec2.CreateVolume", creating)

    events.register("after-call.ec2.CreateVolume", creating)


@pytest.fixture
def describe_volumes() -> Iterator[list[dict[str, Any]]]:
    """The DescribeVolumes requests the handlers make during the test (their parameters)."""
    calls: list[dict[str, Any]] = []

    def seen(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    events = boto3.client("ec2").meta.events  # the handlers' client
    events.register("provide-client-params.ec2.DescribeVolumes", seen)
    yield calls
    events.unregister("provide-client-params.ec2.DescribeVolumes", seen)


# --- create_volume -------------------------------------------------------------------


def test_the_volume_is_created_from_the_snapshot_in_the_helpers_zone_and_tagged_ours(
    world: Any, lambda_context: Any
) -> None:
    event = world.event("create_volume")

    result = create_volume.handler(event, lambda_context)

    volume = world.volume(result["volume_id"])
    assert volume["SnapshotId"] == world.snapshot_id
    assert volume["AvailabilityZone"] == world.helper_zone
    assert volume["VolumeType"] == "gp3"
    assert tags.as_dict(volume["Tags"]) == {
        tags.RESOURCE: tags.TEMPORARY_VOLUME,
        tags.SOURCE_SNAPSHOT: world.snapshot_id,
        tags.EXECUTION: event["execution"],
        "Name": f"vss-restore of {world.snapshot_id}",
    }


def _volume_types_the_stack_accepts() -> list[str]:
    parameter = load_template(REPO / "template.yaml")["Parameters"]["VolumeType"]
    return [str(value) for value in parameter["AllowedValues"]]


@pytest.mark.parametrize("volume_type", _volume_types_the_stack_accepts())
def test_every_volume_type_the_stack_accepts_makes_the_temporary_volume(
    world: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, volume_type: str
) -> None:
    monkeypatch.setenv("VOLUME_TYPE", volume_type)

    result = create_volume.handler(world.event("create_volume"), lambda_context)

    assert world.volume(result["volume_id"])["VolumeType"] == volume_type


def _client_tokens_sent(world: Any, execution: str, snapshot_id: str, times: int) -> list[str]:
    """Create the volume `times` times and return the ClientToken of each CreateVolume."""
    sent: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(params["ClientToken"])

    world.ec2.meta.events.register("provide-client-params.ec2.CreateVolume", record)
    try:
        for _ in range(times):
            steps.create_volume(
                Ec2(client=world.ec2),
                Kms(),
                Settings(),
                snapshot_id,
                Helper(world.helper_id, world.helper_zone),
                execution,
            )
    finally:
        world.ec2.meta.events.unregister("provide-client-params.ec2.CreateVolume", record)
    return sent


def test_a_retried_create_sends_the_same_client_token_so_ec2_makes_one_volume(
    world: Any,
) -> None:
    tokens = _client_tokens_sent(world, world.execution, world.snapshot_id, times=2)

    assert tokens[0] == tokens[1]
    assert len(tokens[0]) <= 64
    assert tokens[0].isascii()


def test_another_execution_or_snapshot_gets_another_client_token(world: Any) -> None:
    other_snapshot = world.ec2.create_snapshot(VolumeId=world.source_volume_id)["SnapshotId"]

    [this] = _client_tokens_sent(world, world.execution, world.snapshot_id, times=1)
    [next_run] = _client_tokens_sent(world, world.execution + "-2", world.snapshot_id, times=1)
    [other] = _client_tokens_sent(world, world.execution, other_snapshot, times=1)

    assert len({this, next_run, other}) == 3


def test_a_helper_without_an_instance_id_in_the_state_is_refused(
    world: Any, lambda_context: Any
) -> None:
    event = world.event("create_volume")
    del event["helper"]

    with pytest.raises(InvalidRequest, match=r"'helper\.instance_id'"):
        create_volume.handler(event, lambda_context)


def test_the_new_volume_is_waited_for_until_it_is_available(
    world: Any, lambda_context: Any, passing_time: PassingTime
) -> None:
    _created_creating(world, 2.5, passing_time)

    result = create_volume.handler(world.event("create_volume"), lambda_context)

    # The first look at 2 s (the shared look: this wait is its looker) sees it creating; the
    # next, under a second later, reads that look's answer (no new DescribeVolumes before a
    # second has passed); the third is the next shared look, and sees it available.
    assert result["available"] == {
        "ready": True,
        "attempt": 3,
        "since": "2026-11-25T00:05:00Z",
        "wait_seconds": 0,
    }
    assert passing_time.slept == [
        2,
        pause_after("volume_available", 1, result["volume_id"]),
        pause_after("volume_available", 2, result["volume_id"]),
    ]
    assert world.volume(result["volume_id"])["State"] == "available"


def test_a_volume_available_when_expected_costs_one_look(
    world: Any, lambda_context: Any, passing_time: PassingTime, describe_volumes: list[Any]
) -> None:
    _created_creating(world, 1.5, passing_time)

    result = create_volume.handler(world.event("create_volume"), lambda_context)

    assert result["available"]["ready"] is True
    assert passing_time.slept == [VOLUME_FIRST_LOOK["volume_available"]]
    # Alone, the wait is elected the looker: its one look is the shared one, by our tag.
    assert describe_volumes == [SHARED_LOOK]


def test_a_volume_still_creating_after_the_invocations_share_goes_to_the_state_machines_loop(
    world: Any, lambda_context: Any, passing_time: PassingTime
) -> None:
    _created_creating(world, None, passing_time)

    result = create_volume.handler(world.event("create_volume"), lambda_context)

    available = result["available"]
    # Looks at about 2, 3, 5, 9 and 17 s; the loop goes on from the fifth look's pause.
    assert (available["ready"], available["attempt"]) == (False, 5)
    assert available["wait_seconds"] == math.ceil(
        pause_after("volume_available", 5, result["volume_id"])
    )
    waited = sum(passing_time.slept)
    assert waited <= IN_INVOCATION["volume_available"].at_most_seconds
    assert waited + LAST_CALL_SECONDS <= lambda_context.get_remaining_time_in_millis() / 1000


def test_an_invocation_started_late_waits_only_as_long_as_it_can_still_answer(
    world: Any, lambda_context: Any, passing_time: PassingTime
) -> None:
    _created_creating(world, None, passing_time)
    lambda_context.get_remaining_time_in_millis = lambda: (LAST_CALL_SECONDS + 3) * 1000

    result = create_volume.handler(world.event("create_volume"), lambda_context)

    assert result["available"]["ready"] is False
    assert sum(passing_time.slept) <= 3


def test_a_new_volume_that_fails_while_waited_for_fails_the_create(
    world: Any, lambda_context: Any, passing_time: PassingTime
) -> None:
    _created_creating(world, None, passing_time)
    created: list[str] = []
    events = boto3.client("ec2").meta.events

    def fails_later(parsed: dict[str, Any], **_: Any) -> None:
        created.append(parsed["VolumeId"])
        passing_time.after(2, lambda: world.set_volume_state(created[0], "error"))
        events.unregister("after-call.ec2.CreateVolume", fails_later)

    events.register("after-call.ec2.CreateVolume", fails_later)

    with pytest.raises(VolumeFailed, match="is in the error state"):
        create_volume.handler(world.event("create_volume"), lambda_context)

    assert sum(passing_time.slept) == 2


# --- volume_state ----------------------------------------------------------------------


def _look(world: Any, lambda_context: Any, wait: str, volume_id: str) -> dict[str, Any]:
    event = world.event("volume_state", volume=volume_id)
    event["wait"] = wait
    return volume_state.handler(event, lambda_context)


def test_a_new_volume_is_available_on_the_first_look(world: Any, lambda_context: Any) -> None:
    progress = _look(world, lambda_context, "volume_available", world.temporary_volume())

    assert (progress["ready"], progress["attempt"], progress["wait_seconds"]) == (True, 1, 0)


def test_a_volume_still_creating_is_looked_at_again_later(world: Any, lambda_context: Any) -> None:
    volume_id = world.temporary_volume()
    world.set_volume_state(volume_id, "creating")

    progress = _look(world, lambda_context, "volume_available", volume_id)

    assert progress["ready"] is False
    assert progress["wait_seconds"] > 0


def test_an_attached_volume_is_attached_on_the_first_look(world: Any, lambda_context: Any) -> None:
    volume_id = world.temporary_volume()
    world.attach(volume_id, "xvdf")

    progress = _look(world, lambda_context, "volume_attached", volume_id)

    assert progress["ready"] is True


def test_a_volume_attached_to_another_instance_is_not_attached_to_the_helper(
    world: Any, lambda_context: Any
) -> None:
    volume_id = world.temporary_volume()
    world.attach(volume_id, "xvdf", instance_id=world.launch())

    progress = _look(world, lambda_context, "volume_attached", volume_id)

    assert progress["ready"] is False


def test_a_detached_volume_is_detached_on_the_first_look(world: Any, lambda_context: Any) -> None:
    volume_id = world.temporary_volume()
    world.attach(volume_id, "xvdf")
    world.ec2.detach_volume(VolumeId=volume_id, InstanceId=world.helper_id)

    progress = _look(world, lambda_context, "volume_detached", volume_id)

    assert progress["ready"] is True


def test_a_volume_in_the_error_state_fails_the_wait(world: Any, lambda_context: Any) -> None:
    volume_id = world.temporary_volume()
    world.set_volume_state(volume_id, "error")

    with pytest.raises(VolumeFailed, match=f"{volume_id} is in the error state"):
        _look(world, lambda_context, "volume_available", volume_id)


def test_a_volume_that_no_longer_exists_fails_the_wait(world: Any, lambda_context: Any) -> None:
    with pytest.raises(VolumeFailed, match="vol-0ffffffffffffffff no longer exists"):
        _look(world, lambda_context, "volume_detached", "vol-0ffffffffffffffff")


def test_an_unknown_wait_is_refused(world: Any, lambda_context: Any) -> None:
    with pytest.raises(InvalidRequest, match="cannot wait for 'volume_gone'"):
        _look(world, lambda_context, "volume_gone", world.temporary_volume())


def test_the_sample_wait_for_the_new_volume_is_ready(world: Any, lambda_context: Any) -> None:
    event = world.event("volume_state", volume=world.temporary_volume())

    assert volume_state.handler(event, lambda_context)["ready"] is True


# --- attach_volume ---------------------------------------------------------------------


def _attachments(world: Any, volume_id: str) -> list[dict[str, Any]]:
    return list(world.volume(volume_id)["Attachments"])


def test_the_volume_is_attached_to_the_helper_at_the_first_free_name(
    world: Any, lambda_context: Any
) -> None:
    volume_id = world.temporary_volume()

    result = attach_volume.handler(world.event("attach_volume", volume=volume_id), lambda_context)

    assert result["device"] == "xvdf"
    [attachment] = _attachments(world, volume_id)
    assert (attachment["InstanceId"], attachment["Device"]) == (world.helper_id, "xvdf")


def test_names_in_the_helpers_block_device_mappings_are_avoided(
    world: Any, lambda_context: Any
) -> None:
    helper = world.launch(mappings=("/dev/xvdf", "xvdg"))
    # Only the instance lists them: the volumes API does not show these attachments (yet).
    for name in ("/dev/xvdf", "xvdg"):
        mapped = world.backend.get_instance(helper).block_device_mapping[name].volume_id
        world.backend.get_volume(mapped).attachment = None
    volume_id = world.temporary_volume()
    event = world.event("attach_volume", volume=volume_id)
    event["helper"]["instance_id"] = helper

    assert attach_volume.handler(event, lambda_context)["device"] == "xvdh"


def test_a_retry_the_helpers_mappings_do_not_show_yet_finds_the_earlier_attach(
    world: Any, lambda_context: Any
) -> None:
    volume_id = world.temporary_volume()
    event = world.event("attach_volume", volume=volume_id)
    first = attach_volume.handler(event, lambda_context)
    # DescribeInstances is eventually consistent: the attach may not be in the mappings yet.
    del world.backend.get_instance(world.helper_id).block_device_mapping[first["device"]]

    again = attach_volume.handler(event, lambda_context)

    assert again["device"] == first["device"]
    assert len(_attachments(world, volume_id)) == 1


def test_a_retry_after_a_successful_attach_returns_the_same_device_without_attaching_again(
    world: Any, lambda_context: Any
) -> None:
    volume_id = world.temporary_volume()
    event = world.event("attach_volume", volume=volume_id)
    first = attach_volume.handler(event, lambda_context)

    again = attach_volume.handler(event, lambda_context)

    assert again["device"] == first["device"]
    assert len(_attachments(world, volume_id)) == 1
    mappings = world.ec2.describe_instances(InstanceIds=[world.helper_id])["Reservations"][0][
        "Instances"
    ][0]["BlockDeviceMappings"]
    assert [m["Ebs"]["VolumeId"] for m in mappings].count(volume_id) == 1


def test_the_attach_answers_once_the_volume_is_attached(
    world: Any, lambda_context: Any, passing_time: PassingTime, describe_volumes: list[Any]
) -> None:
    volume_id = world.temporary_volume()

    result = attach_volume.handler(world.event("attach_volume", volume=volume_id), lambda_context)

    # moto finishes an attach on the next look.
    assert (result["attached"]["ready"], result["attached"]["attempt"]) == (True, 1)
    assert passing_time.slept == [VOLUME_FIRST_LOOK["volume_attached"]]
    # The names in use come from the helper's mappings: the one look is the attach's end,
    # the shared look by our tag (the wait is alone, so it is the looker).
    assert describe_volumes == [SHARED_LOOK]


# --- detach_volume ---------------------------------------------------------------------


def test_our_volume_is_detached_from_the_helper(world: Any, lambda_context: Any) -> None:
    volume_id = world.temporary_volume()
    world.attach(volume_id, "xvdf")

    result = detach_volume.handler(world.event("detach_volume", volume=volume_id), lambda_context)

    assert _attachments(world, volume_id) == []
    assert (result["ready"], result["attempt"], result["wait_seconds"]) == (True, 1, 0)


def test_detaching_a_volume_already_detached_changes_nothing(
    world: Any, lambda_context: Any
) -> None:
    volume_id = world.temporary_volume()

    detach_volume.handler(world.event("detach_volume", volume=volume_id), lambda_context)

    assert world.volume(volume_id)["State"] == "available"


@pytest.mark.parametrize(
    "volume_tags",
    [
        {"Name": "the file server's data disk"},
        {tags.RESOURCE: tags.TEMPORARY_VOLUME, tags.SOURCE_SNAPSHOT: "snap-0ffffffffffffffff"},
        {tags.RESOURCE: tags.CONSISTENT_SNAPSHOT, tags.SOURCE_SNAPSHOT: "<the snapshot>"},
    ],
    ids=["not-ours", "of-another-snapshot", "not-a-temporary-volume"],
)
def test_a_volume_that_is_not_our_temporary_volume_is_never_detached(
    world: Any, lambda_context: Any, volume_tags: dict[str, str]
) -> None:
    volume_tags = {
        k: v.replace("<the snapshot>", world.snapshot_id) for k, v in volume_tags.items()
    }
    volume_id = world.temporary_volume(volume_tags=volume_tags)
    world.attach(volume_id, "xvdf")

    with pytest.raises(NotOurs, match=f"{volume_id} is not a temporary volume of vss-restore"):
        detach_volume.handler(world.event("detach_volume", volume=volume_id), lambda_context)

    [attachment] = _attachments(world, volume_id)
    assert (attachment["InstanceId"], attachment["State"]) == (world.helper_id, "attached")


# --- delete_volume ---------------------------------------------------------------------


def test_our_volume_is_deleted(world: Any, lambda_context: Any) -> None:
    volume_id = world.temporary_volume()

    delete_volume.handler(world.event("delete_volume", volume=volume_id), lambda_context)

    assert world.volume(volume_id) is None


def test_deleting_a_volume_already_gone_is_not_an_error(world: Any, lambda_context: Any) -> None:
    volume_id = world.temporary_volume()
    event = world.event("delete_volume", volume=volume_id)
    delete_volume.handler(event, lambda_context)

    assert delete_volume.handler(event, lambda_context) == {}


@pytest.mark.parametrize(
    "volume_tags",
    [
        {"Name": "the file server's data disk"},
        {tags.RESOURCE: tags.TEMPORARY_VOLUME, tags.SOURCE_SNAPSHOT: "snap-0ffffffffffffffff"},
    ],
    ids=["not-ours", "of-another-snapshot"],
)
def test_a_volume_that_is_not_our_temporary_volume_is_never_deleted(
    world: Any, lambda_context: Any, volume_tags: dict[str, str]
) -> None:
    volume_id = world.temporary_volume(volume_tags=volume_tags)

    with pytest.raises(NotOurs, match="it is left untouched"):
        delete_volume.handler(world.event("delete_volume", volume=volume_id), lambda_context)

    assert world.volume(volume_id)["State"] == "available"


def test_a_volume_dressed_in_our_tags_but_made_from_another_snapshot_is_never_deleted(
    world: Any, lambda_context: Any
) -> None:
    # Someone who can write tags copies ours onto their own (blank) volume.
    volume_id = world.ec2.create_volume(
        Size=30,
        AvailabilityZone="us-east-1c",
        TagSpecifications=[
            {
                "ResourceType": "volume",
                "Tags": tags.as_list(
                    {
                        tags.RESOURCE: tags.TEMPORARY_VOLUME,
                        tags.SOURCE_SNAPSHOT: world.snapshot_id,
                        tags.EXECUTION: world.execution,
                    }
                ),
            }
        ],
    )["VolumeId"]

    with pytest.raises(NotOurs, match="it is left untouched"):
        delete_volume.handler(world.event("delete_volume", volume=volume_id), lambda_context)

    assert world.volume(volume_id)["State"] == "available"
