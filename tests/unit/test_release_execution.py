"""Handler release_execution: what an execution that ended before its cleanup held is freed."""

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tools.cfn_template import load_template
from vss_restore import clock, tags
from vss_restore.aws.ledger import Ledger
from vss_restore.errors import CleanupPending, InvalidRequest
from vss_restore.handlers import claim_snapshot, clean_up, release_execution, take_turn
from vss_restore.logic.release_report import parse_status_change
from vss_restore.observability import REQUEST_REFUSED

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
ABORTED_REASON = "ExecutionAborted: the execution ended ABORTED before its cleanup"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:RestoreStateMachine:next"


@pytest.fixture
def ledger(world: Any) -> Ledger:
    return Ledger("vss-restore-unit-Ledger", client=boto3.client("dynamodb"))


@pytest.fixture
def seconds_after_the_end(
    world: Any, sample: Any, monkeypatch: pytest.MonkeyPatch
) -> Callable[[float], None]:
    """Set the handlers' clock to that long after the execution ended (the event's time)."""
    ended = datetime.fromisoformat(sample("release_execution")["time"])

    def at(seconds: float) -> None:
        moment = ended + timedelta(seconds=seconds)
        monkeypatch.setattr(clock, "now", lambda: moment)

    at(5)  # the event arrives a few seconds after the end
    return at


def _aborted_while_reverting(world: Any, lambda_context: Any) -> str:
    """The execution claimed the snapshot, took the helper's turn and attached its volume."""
    claim_snapshot.handler(world.event("claim_snapshot"), lambda_context)
    take_turn.handler(world.event("take_turn"), lambda_context)
    volume_id = world.temporary_volume()
    world.attach(volume_id, "xvdf")
    return str(volume_id)


def _stuck_detaching(world: Any, volume_id: str) -> None:
    """A forced detach that never finishes (moto's detaches finish at once)."""
    world.backend.get_volume(volume_id).attachment.status = "detaching"


# --- an execution aborted in the middle of a restore -----------------------------------


def test_an_aborted_restore_is_released_and_its_volume_deleted_on_the_retry(
    world: Any,
    lambda_context: Any,
    ledger: Ledger,
    alert_topic: Any,
    detaches: list[dict[str, Any]],
    seconds_after_the_end: Callable[[float], None],
) -> None:
    volume_id = _aborted_while_reverting(world, lambda_context)
    event = world.event("release_execution")

    with pytest.raises(CleanupPending, match=volume_id):
        release_execution.handler(event, lambda_context)
    seconds_after_the_end(65)  # Lambda's first retry
    summary = release_execution.handler(event, lambda_context)

    assert detaches == [{"VolumeId": volume_id, "InstanceId": world.helper_id, "Force": True}]
    assert world.volume(volume_id) is None
    marked = world.snapshot_tags(world.snapshot_id)
    assert marked[tags.STATUS] == tags.FAILED
    assert marked[tags.REASON] == ABORTED_REASON
    assert marked[tags.EXECUTION] == world.execution
    assert marked[tags.RESULT_SNAPSHOT] == "none"
    assert ledger.claim_of(world.snapshot_id)["status"] == tags.FAILED
    assert ledger.holders(world.helper_id) == {}
    assert summary["volumes_removed"] == [volume_id]
    assert summary["left"] == []


def test_the_released_snapshot_can_be_restored_again_at_once(
    world: Any, lambda_context: Any, seconds_after_the_end: Callable[[float], None]
) -> None:
    claim_snapshot.handler(world.event("claim_snapshot"), lambda_context)
    release_execution.handler(world.event("release_execution"), lambda_context)

    retry = {**world.event("claim_snapshot"), "execution": OTHER}
    assert claim_snapshot.handler(retry, lambda_context) == {"claimed": True, "reason": ""}


def test_one_alert_names_the_snapshot_the_turn_and_the_volume(
    world: Any,
    lambda_context: Any,
    alert_topic: Any,
    seconds_after_the_end: Callable[[float], None],
) -> None:
    volume_id = _aborted_while_reverting(world, lambda_context)
    event = world.event("release_execution")
    with pytest.raises(CleanupPending):
        release_execution.handler(event, lambda_context)
    assert alert_topic.published() == []  # not while the detach is under way

    seconds_after_the_end(65)
    release_execution.handler(event, lambda_context)

    [(subject, message)] = alert_topic.published()
    assert subject == "vss-restore: released demo (ABORTED)"
    assert f"{world.snapshot_id}: failed ({ABORTED_REASON}); turn on {world.helper_id}" in message
    assert f"Temporary volumes removed: {volume_id}" in message
    assert "Nothing is left behind." in message
    assert world.execution in message


def test_the_same_event_again_does_nothing_more(
    world: Any,
    lambda_context: Any,
    alert_topic: Any,
    seconds_after_the_end: Callable[[float], None],
) -> None:
    volume_id = _aborted_while_reverting(world, lambda_context)
    event = world.event("release_execution")
    with pytest.raises(CleanupPending):
        release_execution.handler(event, lambda_context)
    seconds_after_the_end(65)
    release_execution.handler(event, lambda_context)
    marked = world.snapshot_tags(world.snapshot_id)

    seconds_after_the_end(3600)  # EventBridge delivered it twice
    again = release_execution.handler(event, lambda_context)

    assert again["released"] == again["volumes_removed"] == again["left"] == []
    assert world.snapshot_tags(world.snapshot_id) == marked
    assert len(alert_topic.published()) == 1
    assert world.volume(volume_id) is None


def test_a_claim_without_a_volume_is_released_and_alerted_at_once(
    world: Any,
    lambda_context: Any,
    alert_topic: Any,
    ledger: Ledger,
    seconds_after_the_end: Callable[[float], None],
) -> None:
    claim_snapshot.handler(world.event("claim_snapshot"), lambda_context)

    summary = release_execution.handler(world.event("release_execution"), lambda_context)

    assert [r["snapshot_id"] for r in summary["released"]] == [world.snapshot_id]
    assert ledger.claim_of(world.snapshot_id)["status"] == tags.FAILED
    assert len(alert_topic.published()) == 1


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("TIMED_OUT", "ExecutionTimedOut: the execution ended TIMED_OUT before its cleanup"),
        ("FAILED", "ExecutionFailed: the execution ended FAILED before its cleanup"),
    ],
)
def test_the_reason_names_how_the_execution_ended(
    world: Any,
    lambda_context: Any,
    status: str,
    reason: str,
    seconds_after_the_end: Callable[[float], None],
) -> None:
    claim_snapshot.handler(world.event("claim_snapshot"), lambda_context)
    event = world.event("release_execution")
    event["detail"]["status"] = status

    release_execution.handler(event, lambda_context)

    assert world.snapshot_tags(world.snapshot_id)[tags.REASON] == reason


def test_a_verdict_the_execution_wrote_before_it_ended_is_kept(
    world: Any,
    lambda_context: Any,
    ledger: Ledger,
    seconds_after_the_end: Callable[[float], None],
) -> None:
    claim_snapshot.handler(world.event("claim_snapshot"), lambda_context)
    verdict = {
        tags.STATUS: tags.VERIFIED,
        tags.EXECUTION: world.execution,
        tags.REASON: "reverted to the backup's shadow copy; the restored disk passed its check",
    }
    world.ec2.create_tags(Resources=[world.snapshot_id], Tags=tags.as_list(verdict))

    release_execution.handler(world.event("release_execution"), lambda_context)

    assert world.snapshot_tags(world.snapshot_id)[tags.STATUS] == tags.VERIFIED
    assert ledger.claim_of(world.snapshot_id)["status"] == tags.VERIFIED


# --- nothing to do -------------------------------------------------------------------


def test_an_execution_that_cleaned_up_after_itself_leaves_nothing_to_do(
    world: Any,
    lambda_context: Any,
    alert_topic: Any,
    ledger: Ledger,
    detaches: list[dict[str, Any]],
    seconds_after_the_end: Callable[[float], None],
) -> None:
    claim_snapshot.handler(world.event("claim_snapshot"), lambda_context)
    take_turn.handler(world.event("take_turn"), lambda_context)
    clean_up.handler(world.event("clean_up", volume=world.temporary_volume()), lambda_context)
    published = len(alert_topic.published())  # the cleanup's own failure alert
    marked = world.snapshot_tags(world.snapshot_id)
    event = world.event("release_execution")
    event["detail"]["status"] = "FAILED"

    summary = release_execution.handler(event, lambda_context)

    assert summary["released"] == summary["volumes_removed"] == summary["left"] == []
    assert len(alert_topic.published()) == published
    assert world.snapshot_tags(world.snapshot_id) == marked
    assert detaches == []


def test_an_execution_that_held_nothing_publishes_nothing(
    world: Any,
    lambda_context: Any,
    alert_topic: Any,
    seconds_after_the_end: Callable[[float], None],
) -> None:
    release_execution.handler(world.event("release_execution"), lambda_context)

    assert alert_topic.published() == []
    assert tags.STATUS not in world.snapshot_tags(world.snapshot_id)


# --- an execution that failed before any restore ----------------------------------------

REFUSED_CAUSE = json.dumps(
    {
        "errorType": "InvalidRequest",
        "errorMessage": "snapshot_id 'snap-nothex' is not a snapshot ID",
        "requestId": "0c4a7f0e-5b6f-4d3e-9d4c-2f1b0a9e8d7c",
        "stackTrace": ['  File "/var/task/vss_restore/handlers/read_request.py", line 1'],
    }
)


def _failed(world: Any, error: str | None, cause: str | None) -> dict[str, Any]:
    event = world.event("release_execution")
    event["detail"].update(status="FAILED", error=error, cause=cause)
    event["detail"]["input"] = json.dumps({"snapshot_id": "snap-nothex"})
    return event


def test_a_refused_request_is_alerted_once_with_its_error_input_and_link(
    world: Any,
    lambda_context: Any,
    alert_topic: Any,
    emitted_metrics: Callable[[], list[str]],
    seconds_after_the_end: Callable[[float], None],
) -> None:
    summary = release_execution.handler(
        _failed(world, "InvalidRequest", REFUSED_CAUSE), lambda_context
    )

    [(subject, message)] = alert_topic.published()
    assert subject == "vss-restore: request refused (InvalidRequest) by demo"
    assert "The execution demo refused its request: no restore was tried" in message
    assert "Error:      InvalidRequest: snapshot_id 'snap-nothex' is not a snapshot ID\n" in message
    assert 'Input:      {"snapshot_id": "snap-nothex"}' in message
    assert f"#/v2/executions/details/{world.execution}" in message
    assert "stackTrace" not in message
    assert summary["refused"] is True
    assert emitted_metrics().count(REQUEST_REFUSED) == 1
    assert tags.STATUS not in world.snapshot_tags(world.snapshot_id)


def test_a_failure_without_error_or_cause_is_alerted_all_the_same(
    world: Any,
    lambda_context: Any,
    alert_topic: Any,
    seconds_after_the_end: Callable[[float], None],
) -> None:
    event = _failed(world, None, None)
    event["detail"]["input"] = None

    release_execution.handler(event, lambda_context)

    [(subject, message)] = alert_topic.published()
    assert subject == "vss-restore: failed before any restore (UnknownError) by demo"
    assert "Error:      UnknownError\n" in message
    assert "Input:      not included in the event" in message


def test_reading_the_request_that_failed_otherwise_is_alerted_with_a_clipped_cause(
    world: Any,
    lambda_context: Any,
    alert_topic: Any,
    seconds_after_the_end: Callable[[float], None],
) -> None:
    cause = "The Lambda function timed out. " + "x" * 5000

    release_execution.handler(_failed(world, "States.Timeout", cause), lambda_context)

    [(subject, message)] = alert_topic.published()
    assert subject == "vss-restore: failed before any restore (States.Timeout) by demo"
    assert "failed before it restored anything" in message
    assert "Error:      States.Timeout: The Lambda function timed out. xxx" in message
    assert len(message) < 2000


def test_restores_that_failed_are_not_alerted_again(
    world: Any,
    lambda_context: Any,
    alert_topic: Any,
    emitted_metrics: Callable[[], list[str]],
    seconds_after_the_end: Callable[[float], None],
) -> None:
    # Resolving failed before the claim: its cleanup alerted, the execution ended with the
    # verdicts (RestoreFailed), no claim was made.
    cause = json.dumps({"errorType": "RestoreFailed", "errorMessage": '{"failed": []}'})

    summary = release_execution.handler(_failed(world, "RestoreFailed", cause), lambda_context)

    assert alert_topic.published() == []
    assert "refused" not in summary
    assert REQUEST_REFUSED not in emitted_metrics()


def test_a_restore_with_a_claim_that_cleaned_up_is_not_alerted_as_refused(
    world: Any,
    lambda_context: Any,
    alert_topic: Any,
    seconds_after_the_end: Callable[[float], None],
) -> None:
    claim_snapshot.handler(world.event("claim_snapshot"), lambda_context)
    take_turn.handler(world.event("take_turn"), lambda_context)
    clean_up.handler(world.event("clean_up", volume=world.temporary_volume()), lambda_context)
    published = len(alert_topic.published())  # the cleanup's own failure alert

    # Whatever the error: even one that is not the workflow's RestoreFailed.
    release_execution.handler(_failed(world, "States.Runtime", None), lambda_context)

    assert len(alert_topic.published()) == published


@pytest.mark.parametrize("status", ["ABORTED", "TIMED_OUT"])
def test_an_execution_stopped_before_any_restore_is_not_alerted(
    world: Any,
    lambda_context: Any,
    alert_topic: Any,
    status: str,
    seconds_after_the_end: Callable[[float], None],
) -> None:
    event = _failed(world, "States.Timeout", "")
    event["detail"]["status"] = status

    release_execution.handler(event, lambda_context)

    assert alert_topic.published() == []


def test_a_claim_another_execution_took_over_is_not_released(
    world: Any,
    lambda_context: Any,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    seconds_after_the_end: Callable[[float], None],
) -> None:
    # The index still lists the claim under the ended execution; the item is another's now.
    monkeypatch.setattr(
        Ledger,
        "claims_of",
        lambda self, execution: [
            {"snapshot_id": world.snapshot_id, "status": "running", "helper": ""}
        ],
    )
    claim_snapshot.handler({**world.event("claim_snapshot"), "execution": OTHER}, lambda_context)

    summary = release_execution.handler(world.event("release_execution"), lambda_context)

    assert summary["released"] == []
    assert ledger.claim_of(world.snapshot_id) | {"lease_until": ""} == {
        "snapshot_id": world.snapshot_id,
        "status": "running",
        "execution": OTHER,
        "helper": "",
        "lease_until": "",
    }
    assert tags.STATUS not in world.snapshot_tags(world.snapshot_id)


# --- never a volume that is not ours ---------------------------------------------------


@pytest.mark.parametrize(
    "volume_tags",
    [
        {tags.EXECUTION: "<execution>", "Name": "the file server's data disk"},
        {tags.EXECUTION: "<execution>", tags.RESOURCE: tags.CONSISTENT_SNAPSHOT},
        # Tagged like ours but without its snapshot: require_ours refuses it.
        {tags.EXECUTION: "<execution>", tags.RESOURCE: tags.TEMPORARY_VOLUME},
    ],
    ids=["no-resource-tag", "another-resource-kind", "no-source-snapshot"],
)
def test_a_volume_tagged_with_the_execution_but_not_ours_is_left_attached(
    world: Any,
    lambda_context: Any,
    alert_topic: Any,
    detaches: list[dict[str, Any]],
    volume_tags: dict[str, str],
    seconds_after_the_end: Callable[[float], None],
) -> None:
    volume_tags = {k: v.replace("<execution>", world.execution) for k, v in volume_tags.items()}
    volume_id = world.temporary_volume(volume_tags=volume_tags)
    world.attach(volume_id, "xvdf")

    summary = release_execution.handler(world.event("release_execution"), lambda_context)

    [attachment] = world.volume(volume_id)["Attachments"]
    assert (attachment["InstanceId"], attachment["State"]) == (world.helper_id, "attached")
    assert detaches == []
    assert summary["volumes_removed"] == summary["left"] == []
    assert alert_topic.published() == []


def test_a_volume_of_another_execution_is_left_alone(
    world: Any,
    lambda_context: Any,
    detaches: list[dict[str, Any]],
    seconds_after_the_end: Callable[[float], None],
) -> None:
    volume_id = world.temporary_volume(execution=OTHER)
    world.attach(volume_id, "xvdf")

    release_execution.handler(world.event("release_execution"), lambda_context)

    assert detaches == []
    assert world.volume(volume_id) is not None


# --- a cleanup that cannot finish says what is left ------------------------------------


def test_a_detach_that_never_finishes_is_named_in_the_alert_once_retries_run_out(
    world: Any,
    lambda_context: Any,
    alert_topic: Any,
    ledger: Ledger,
    seconds_after_the_end: Callable[[float], None],
) -> None:
    volume_id = _aborted_while_reverting(world, lambda_context)
    _stuck_detaching(world, volume_id)
    event = world.event("release_execution")
    with pytest.raises(CleanupPending):
        release_execution.handler(event, lambda_context)
    seconds_after_the_end(65)
    with pytest.raises(CleanupPending):
        release_execution.handler(event, lambda_context)

    seconds_after_the_end(185)  # Lambda's last retry
    summary = release_execution.handler(event, lambda_context)

    [left] = summary["left"]
    assert left.startswith(f"{volume_id} (in-use, detaching on {world.helper_id} at xvdf)")
    [(subject, message)] = alert_topic.published()
    assert subject == "vss-restore: 1 resource(s) left by demo (ABORTED)"
    assert f"  {left}" in message
    assert f"{world.snapshot_id}: failed" in message  # released on the first call
    assert ledger.claim_of(world.snapshot_id)["status"] == tags.FAILED


# --- the event -------------------------------------------------------------------------


def test_the_rule_matches_the_sample_and_only_executions_that_ended_badly(sample: Any) -> None:
    from moto.events.models import EventPattern

    function = load_template(TEMPLATE)["Resources"]["ReleaseExecutionFunction"]
    rule = function["Properties"]["Events"]["ExecutionEndedBadly"]["Properties"]
    event = sample("release_execution")
    pattern = rule["Pattern"]
    pattern["detail"]["stateMachineArn"] = [event["detail"]["stateMachineArn"]]
    matches = EventPattern.load(json.dumps(pattern)).matches_event

    assert matches(event)
    for status in ("TIMED_OUT", "FAILED"):
        assert matches({**event, "detail": {**event["detail"], "status": status}})
    assert not matches({**event, "detail": {**event["detail"], "status": "SUCCEEDED"}})
    other_machine = event["detail"]["stateMachineArn"] + "-other"
    assert not matches({**event, "detail": {**event["detail"], "stateMachineArn": other_machine}})


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"detail": None}, "no detail"),
        ({"detail": {"executionArn": "demo", "status": "ABORTED"}}, "not an execution ARN"),
        ({"status": "SUCCEEDED"}, "'SUCCEEDED', not one of"),
        ({"time": "yesterday"}, "'yesterday' is not a date"),
        ({"time": "2026-11-25T01:32:40"}, "has no time zone"),
    ],
)
def test_an_event_it_cannot_read_is_refused(
    sample: Any, change: dict[str, Any], error: str
) -> None:
    event = sample("release_execution")
    if "status" in change:
        event["detail"]["status"] = change["status"]
    else:
        event.update(change)

    with pytest.raises(InvalidRequest, match=error):
        parse_status_change(event)
