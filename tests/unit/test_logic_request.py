"""What the workflow is asked to restore, from each shape of input (logic/request.py)."""

from typing import Any

import pytest

from vss_restore.errors import InvalidRequest
from vss_restore.logic.request import RestoreRequest, parse_request, snapshot_id_of

FIRST = "snap-0a1b2c3d4e5f60718"
SECOND = "snap-0b2c3d4e5f6071829"


def test_a_completed_snapshot_event_asks_to_restore_that_snapshot(sample: Any) -> None:
    assert parse_request(sample("snapshot-completed")) == [RestoreRequest(FIRST)]


def test_a_copied_snapshot_event_asks_to_restore_the_copy(sample: Any) -> None:
    event = sample("snapshot-completed")
    event["detail"]["event"] = "copySnapshot"
    event["detail"]["snapshot_id"] = "arn:aws:ec2:us-west-2::snapshot/snap-0c3d4e5f607182930"

    assert parse_request(event) == [RestoreRequest("snap-0c3d4e5f607182930")]


def test_a_multi_volume_event_asks_to_restore_every_completed_snapshot(sample: Any) -> None:
    assert parse_request(sample("multi-volume-snapshots-completed")) == [
        RestoreRequest(FIRST),
        RestoreRequest(SECOND),
    ]


def test_a_multi_volume_snapshot_in_error_is_dropped(sample: Any) -> None:
    event = sample("multi-volume-snapshots-completed")
    event["detail"]["snapshots"][0]["status"] = "error"

    assert parse_request(event) == [RestoreRequest(SECOND)]


def test_a_multi_volume_event_with_no_completed_snapshot_is_refused(sample: Any) -> None:
    event = sample("multi-volume-snapshots-completed")
    for item in event["detail"]["snapshots"]:
        item["status"] = "error"

    with pytest.raises(InvalidRequest, match="names no completed snapshot"):
        parse_request(event)


def test_an_on_demand_input_names_the_snapshot_and_the_helper(sample: Any) -> None:
    assert parse_request(sample("on-demand")) == [
        RestoreRequest(FIRST, helper_instance_id="i-0abc1234def567890", keep_volume=False)
    ]


def test_an_on_demand_input_needs_only_the_snapshot_id(sample: Any) -> None:
    event = {"snapshot_id": sample("on-demand")["snapshot_id"]}

    assert parse_request(event) == [RestoreRequest(FIRST, helper_instance_id="", keep_volume=False)]


def test_an_on_demand_input_may_ask_to_keep_the_volume(sample: Any) -> None:
    event = sample("on-demand")
    event["keep_volume"] = True

    assert parse_request(event)[0].keep_volume is True


def test_an_on_demand_input_may_name_the_snapshot_by_its_arn(sample: Any) -> None:
    event = sample("on-demand")
    event["snapshot_id"] = f"arn:aws:ec2:us-east-1:123456789012:snapshot/{FIRST}"

    assert parse_request(event)[0].snapshot_id == FIRST


def test_aws_malformed_sample_arn_with_the_region_in_the_account_slot_still_names_the_snapshot(
    sample: Any,
) -> None:
    event = sample("snapshot-completed")
    event["detail"]["snapshot_id"] = "arn:aws:ec2::us-west-2:snapshot/snap-01234567"

    assert parse_request(event) == [RestoreRequest("snap-01234567")]


@pytest.mark.parametrize("reference", [FIRST, f"arn:aws:ec2:us-east-1::snapshot/{FIRST}"])
def test_a_snapshot_is_named_by_its_id_or_its_arn(reference: str) -> None:
    assert snapshot_id_of(reference) == FIRST


def test_a_failed_snapshot_event_is_refused(sample: Any) -> None:
    event = sample("snapshot-completed")
    event["detail"]["result"] = "failed"

    with pytest.raises(InvalidRequest, match="is not a completed snapshot"):
        parse_request(event)


def test_a_snapshot_event_other_than_create_or_copy_is_refused(sample: Any) -> None:
    event = sample("snapshot-completed")
    event["detail"]["event"] = "shareSnapshot"

    with pytest.raises(InvalidRequest, match="'shareSnapshot'"):
        parse_request(event)


def test_an_event_of_another_type_is_refused_by_its_type(sample: Any) -> None:
    event = sample("snapshot-completed")
    event["detail-type"] = "EC2 Instance State-change Notification"

    with pytest.raises(InvalidRequest, match="'EC2 Instance State-change Notification'"):
        parse_request(event)


def test_an_event_without_detail_is_refused(sample: Any) -> None:
    event = sample("snapshot-completed")
    del event["detail"]

    with pytest.raises(InvalidRequest, match="no detail object"):
        parse_request(event)


def test_a_multi_volume_event_without_a_snapshot_list_is_refused(sample: Any) -> None:
    event = sample("multi-volume-snapshots-completed")
    event["detail"]["snapshots"] = "snap-0a1b2c3d4e5f60718"

    with pytest.raises(InvalidRequest, match="no snapshots list"):
        parse_request(event)


@pytest.mark.parametrize("event", [[], "snap-0a1b2c3d4e5f60718", None])
def test_an_input_that_is_not_a_json_object_is_refused(event: Any) -> None:
    with pytest.raises(InvalidRequest, match="not a JSON object"):
        parse_request(event)


@pytest.mark.parametrize(
    "reference",
    [
        "vol-0123456789abcdef0",
        "snap-XYZ",
        "snap-0a1b2c3d4e5f60718; rm -rf /",
        "arn:aws:ec2:us-east-1::snapshot/",
        "",
    ],
)
def test_a_reference_that_names_no_snapshot_is_refused_with_the_reference(reference: str) -> None:
    with pytest.raises(InvalidRequest, match="does not name an EBS snapshot"):
        snapshot_id_of(reference)


@pytest.mark.parametrize("reference", [None, 42, ["snap-0a1b2c3d4e5f60718"]])
def test_a_reference_that_is_not_text_is_refused(reference: Any) -> None:
    with pytest.raises(InvalidRequest, match="is not a string"):
        snapshot_id_of(reference)


def test_an_on_demand_input_without_a_snapshot_is_refused(sample: Any) -> None:
    event = sample("on-demand")
    del event["snapshot_id"]

    with pytest.raises(InvalidRequest, match="None is not a string"):
        parse_request(event)


def test_unknown_on_demand_fields_are_refused_by_name(sample: Any) -> None:
    event = sample("on-demand")
    event["snapshotId"] = event.pop("snapshot_id")
    event["dry_run"] = True

    with pytest.raises(InvalidRequest, match="unknown input fields: dry_run, snapshotId"):
        parse_request(event)


@pytest.mark.parametrize("helper", ["helper-1", "i-XYZ", 123, "i-0abc1234def567890 "])
def test_an_on_demand_helper_that_is_not_an_instance_id_is_refused(
    sample: Any, helper: Any
) -> None:
    event = sample("on-demand")
    event["helper_instance_id"] = helper

    with pytest.raises(InvalidRequest, match="is not an instance ID"):
        parse_request(event)


@pytest.mark.parametrize("keep", ["yes", 1, None])
def test_keep_volume_must_be_true_or_false(sample: Any, keep: Any) -> None:
    event = sample("on-demand")
    event["keep_volume"] = keep

    with pytest.raises(InvalidRequest, match="keep_volume must be true or false"):
        parse_request(event)
