"""The shared look at our temporary volumes (looks.py, issue #13): one DescribeVolumes a second
for every wait, its answer in the ledger, each wait's own look when no answer is fresh, and
the "ours?" checks before DetachVolume and DeleteVolume on both paths."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.unit.conftest import LEDGER_TABLE
from vss_restore import clock, tags
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import VOLUMES_LOOK_KEY, Ledger, volume_key
from vss_restore.errors import AwsThrottled, NotOurs
from vss_restore.handlers import delete_volume, detach_volume
from vss_restore.logic import looks
from vss_restore.looks import SharedLook


@dataclass
class Clock:
    now: datetime = datetime(2026, 11, 25, 0, 5, tzinfo=UTC)

    def pass_seconds(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def time(monkeypatch: pytest.MonkeyPatch) -> Clock:
    frozen = Clock()
    monkeypatch.setattr(clock, "now", lambda: frozen.now)
    monkeypatch.setattr(clock, "sleep", frozen.pass_seconds)
    return frozen


@pytest.fixture
def calls() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """The DescribeVolumes and the ledger's UpdateItem requests made during the test."""
    seen: dict[str, list[dict[str, Any]]] = {"DescribeVolumes": [], "UpdateItem": []}
    hooks = [
        (boto3.client("ec2").meta.events, "provide-client-params.ec2.DescribeVolumes"),
        (boto3.client("dynamodb").meta.events, "provide-client-params.dynamodb.UpdateItem"),
    ]

    def remember(params: dict[str, Any], event_name: str, **_: Any) -> None:
        seen[event_name.split(".")[-1]].append(dict(params))

    for events, name in hooks:
        events.register(name, remember)
    yield seen
    for events, name in hooks:
        events.unregister(name, remember)


def shared_look() -> SharedLook:
    return SharedLook(Ec2(), Ledger(LEDGER_TABLE))


def own_looks(calls: dict[str, list[dict[str, Any]]]) -> list[list[str]]:
    return [c["VolumeIds"] for c in calls["DescribeVolumes"] if "VolumeIds" in c]


def shared_looks(calls: dict[str, list[dict[str, Any]]]) -> int:
    return sum(1 for c in calls["DescribeVolumes"] if c.get("Filters") == [looks.OUR_FILTER])


def record(volume_id: str) -> dict[str, Any]:
    found = boto3.client("dynamodb").get_item(
        TableName=LEDGER_TABLE, Key={"pk": {"S": volume_key(volume_id)}}, ConsistentRead=True
    )
    return dict(found.get("Item", {}))


def test_waits_in_the_same_second_share_one_describe_volumes(
    world: Any, time: Clock, calls: dict[str, list[dict[str, Any]]]
) -> None:
    volumes = [world.temporary_volume() for _ in range(6)]
    world.attach(volumes[0], "xvdf")

    seen = {volume_id: shared_look().volume(volume_id) for volume_id in volumes}

    assert shared_looks(calls) == 1
    assert own_looks(calls) == []
    assert seen[volumes[0]]["Attachments"][0]["InstanceId"] == world.helper_id
    assert {seen[v]["State"] for v in volumes[1:]} == {"available"}


def test_a_second_later_the_next_wait_makes_the_next_shared_look(
    world: Any, time: Clock, calls: dict[str, list[dict[str, Any]]]
) -> None:
    volume_id = world.temporary_volume()
    shared_look().volume(volume_id)
    world.attach(volume_id, "xvdf")

    time.pass_seconds(0.9)
    assert shared_look().volume(volume_id)["Attachments"] == []  # the last answer: no look
    time.pass_seconds(0.1)
    attached = shared_look().volume(volume_id)

    assert shared_looks(calls) == 2
    assert own_looks(calls) == []
    assert attached["Attachments"][0]["InstanceId"] == world.helper_id


def test_an_answer_older_than_three_seconds_is_not_used(
    world: Any, time: Clock, calls: dict[str, list[dict[str, Any]]]
) -> None:
    volume_id = world.temporary_volume()
    shared_look().volume(volume_id)
    # A looker elected 3 s later dies before it answers: the answer goes stale.
    time.pass_seconds(3.2)
    assert Ledger(LEDGER_TABLE).elect_looker(looks_ms(time), looks.LOOK_EVERY_MS)
    time.pass_seconds(0.5)

    seen = shared_look().volume(volume_id)

    assert own_looks(calls) == [[volume_id]]  # on its own, as before the shared look
    assert seen is not None
    assert seen["VolumeId"] == volume_id


def test_a_volume_created_after_the_last_look_is_looked_at_by_its_wait(
    world: Any, time: Clock, calls: dict[str, list[dict[str, Any]]]
) -> None:
    shared_look().volume(world.temporary_volume())
    new = world.temporary_volume()
    time.pass_seconds(0.5)

    seen = shared_look().volume(new)

    assert own_looks(calls) == [[new]]
    assert seen is not None
    assert seen["State"] == "available"


def test_records_are_written_only_when_a_volume_changed(
    world: Any, time: Clock, calls: dict[str, list[dict[str, Any]]]
) -> None:
    volumes = [world.temporary_volume() for _ in range(3)]
    shared_look().volume(volumes[0])
    world.attach(volumes[1], "xvdf")
    calls["UpdateItem"].clear()

    time.pass_seconds(1)
    shared_look().volume(volumes[0])

    written = [c["Key"]["pk"]["S"] for c in calls["UpdateItem"]]
    # The election, the one volume that changed, and the look marked complete.
    assert written == [VOLUMES_LOOK_KEY, volume_key(volumes[1]), VOLUMES_LOOK_KEY]


def test_a_record_is_small_and_expires_within_the_hour(world: Any, time: Clock) -> None:
    volume_id = world.temporary_volume()
    world.attach(volume_id, "xvdf")

    shared_look().volume(volume_id)

    item = record(volume_id)
    size = sum(len(name) + len(str(next(iter(v.values())))) for name, v in item.items())
    assert size < 400  # DynamoDB's item size: names and values; far under 10 KB
    assert int(item["expires_at"]["N"]) == int(time.now.timestamp()) + looks.KEEP_SECONDS


def test_a_record_near_its_expiry_is_written_again(
    world: Any, time: Clock, calls: dict[str, list[dict[str, Any]]]
) -> None:
    volume_id = world.temporary_volume()
    shared_look().volume(volume_id)
    time.pass_seconds(looks.KEEP_SECONDS - looks.RENEW_SECONDS + 1)

    shared_look().volume(volume_id)

    assert int(record(volume_id)["expires_at"]["N"]) == (
        int(time.now.timestamp()) + looks.KEEP_SECONDS
    )


def test_an_expired_record_is_not_used(
    world: Any, time: Clock, calls: dict[str, list[dict[str, Any]]]
) -> None:
    answer = {"vol-1": {"VolumeId": "vol-1", "State": "available"}}
    text = looks.encode(answer["vol-1"])
    now_ms = looks_ms(time)
    expired = looks.Record(looks.decode(text), now_ms, now_ms // 1000)

    assert looks.usable(now_ms, expired, now_ms) is None
    assert looks.usable(now_ms, looks.Record({}, now_ms, now_ms // 1000 + 1), now_ms) == {}


def test_a_slower_looker_never_overwrites_a_later_look(world: Any, time: Clock) -> None:
    ledger = Ledger(LEDGER_TABLE)
    ledger.note_volume("vol-1", '{"State":"in-use"}', seen_at_ms=2000, expires_at=9)

    ledger.note_volume("vol-1", '{"State":"available"}', seen_at_ms=1000, expires_at=9)

    assert record("vol-1")["volume"]["S"] == '{"State":"in-use"}'


def test_the_delete_step_drops_the_volumes_record(
    world: Any, time: Clock, lambda_context: Any
) -> None:
    volume_id = world.temporary_volume()
    shared_look().volume(volume_id)
    assert record(volume_id)

    delete_volume.handler(world.event("delete_volume", volume=volume_id), lambda_context)

    assert world.volume(volume_id) is None
    assert record(volume_id) == {}


# -- the "ours?" checks, on both paths ------------------------------------------------------
NOT_OURS = [
    {"Name": "the file server's data disk"},
    {tags.RESOURCE: tags.TEMPORARY_VOLUME, tags.SOURCE_SNAPSHOT: "snap-0ffffffffffffffff"},
]


@pytest.mark.parametrize("volume_tags", NOT_OURS, ids=["untagged", "of-another-snapshot"])
@pytest.mark.parametrize("path", ["looker", "fresh-answer"])
def test_a_volume_not_ours_is_never_detached_on_either_path(
    world: Any,
    time: Clock,
    lambda_context: Any,
    calls: dict[str, list[dict[str, Any]]],
    volume_tags: dict[str, str],
    path: str,
) -> None:
    volume_id = world.temporary_volume(volume_tags=volume_tags)
    world.attach(volume_id, "xvdf")
    if path == "fresh-answer":
        shared_look().volume(world.temporary_volume())  # another wait's look, this second
    calls["DescribeVolumes"].clear()

    with pytest.raises(NotOurs, match="it is left untouched"):
        detach_volume.handler(world.event("detach_volume", volume=volume_id), lambda_context)

    assert world.volume(volume_id)["Attachments"][0]["State"] == "attached"
    _assert_path(calls, path, volume_id, volume_tags)


@pytest.mark.parametrize("volume_tags", NOT_OURS, ids=["untagged", "of-another-snapshot"])
@pytest.mark.parametrize("path", ["looker", "fresh-answer"])
def test_a_volume_not_ours_is_never_deleted_on_either_path(
    world: Any,
    time: Clock,
    lambda_context: Any,
    calls: dict[str, list[dict[str, Any]]],
    volume_tags: dict[str, str],
    path: str,
) -> None:
    volume_id = world.temporary_volume(volume_tags=volume_tags)
    if path == "fresh-answer":
        shared_look().volume(world.temporary_volume())
    calls["DescribeVolumes"].clear()

    with pytest.raises(NotOurs, match="it is left untouched"):
        delete_volume.handler(world.event("delete_volume", volume=volume_id), lambda_context)

    assert world.volume(volume_id)["State"] == "available"
    _assert_path(calls, path, volume_id, volume_tags)


def _assert_path(
    calls: dict[str, list[dict[str, Any]]], path: str, volume_id: str, volume_tags: dict[str, str]
) -> None:
    """Which look decided: the shared one (this check elected) or the last answer; a volume
    the answer does not hold (not tagged ours) is looked at on its own."""
    listed = volume_tags.get(tags.RESOURCE) == tags.TEMPORARY_VOLUME
    assert shared_looks(calls) == (1 if path == "looker" else 0)
    assert own_looks(calls) == ([] if listed else [[volume_id]])


def throttled(*_: Any) -> Any:
    """A ledger call DynamoDB throttles past botocore's retries."""
    raise AwsThrottled("ProvisionedThroughputExceededException")


def looks_ms(time: Clock) -> int:
    return int(time.now.timestamp() * 1000)


def test_a_throttled_ledger_never_fails_a_wait_it_looks_itself(
    world: Any, time: Clock, calls: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    volume_id = world.temporary_volume()

    monkeypatch.setattr(Ledger, "volume_answer", throttled)

    seen = shared_look().volume(volume_id)

    assert seen is not None
    assert seen["VolumeId"] == volume_id
    assert own_looks(calls) == [[volume_id]]
    assert shared_looks(calls) == 0


def test_a_looker_whose_records_cannot_be_written_still_answers_its_wait(
    world: Any, time: Clock, calls: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    volume_id = world.temporary_volume()

    monkeypatch.setattr(Ledger, "volume_records", throttled)

    seen = shared_look().volume(volume_id)

    assert seen is not None
    assert seen["State"] == "available"
    assert shared_looks(calls) == 1
    assert record(volume_id) == {}  # no record, no answer marked: the next wait looks again
