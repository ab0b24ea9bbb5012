"""Release what an execution that ended without its cleanup still held: claims, turns, volumes.

Idempotent: the event can come twice, and Lambda calls again after CleanupPending. An
execution that ran its own cleanup (the usual FAILED one) leaves nothing: then nothing is
done and nothing published. One that FAILED before it claimed any snapshot (its request
refused) ran no cleanup either: it gets the one alert it would otherwise never have.
"""

from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from vss_restore import clock, tags
from vss_restore.aws import error_code, error_message
from vss_restore.aws.ec2 import Ec2, require_ours
from vss_restore.aws.ledger import RUNNING, Ledger
from vss_restore.aws.sns import Sns
from vss_restore.aws.states import StepFunctions
from vss_restore.cleanup import DiskTool, give_back_helper, reason_of, remove_temporary_volume
from vss_restore.errors import AwsThrottled, CleanupPending, NotOurs, SnapshotNotFound
from vss_restore.logic.release_report import (
    StatusChange,
    describe_volume,
    failed_before_any_restore,
    refused_alert,
    release_alert,
    release_reason,
)
from vss_restore.observability import (
    CLAIM_RELEASED,
    REQUEST_REFUSED,
    TEMPORARY_VOLUME_LEFT,
    count,
    logger,
)
from vss_restore.steps import record_failed, record_reverified

# Lambda calls an event that failed again after about 1 and 3 minutes. A detach still not
# done 2 minutes after the execution ended is given up on the next call: the alert then
# names the volume left, instead of the event dying quietly after its last retry.
DETACH_PATIENCE = timedelta(minutes=2)
MAX_CAUSE_IN_ALERT = 1000  # a cause is up to 32 KB; a stack trace adds nothing to an alert


def release_execution(
    ec2: Ec2,
    ledger: Ledger,
    sns: Sns,
    change: StatusChange,
    *,
    alert_topic_arn: str,
    states: StepFunctions,
    helper_concurrency: int,
    disk_tool: DiskTool,
) -> dict[str, Any]:
    logger.append_keys(execution=change.execution)
    reason = release_reason(change.status)
    # The locks first: whatever happens to the volumes, the snapshot and the helper are free.
    released = []
    claims = ledger.claims_of(change.execution)
    for claim in claims:
        if claim["status"] == RUNNING:
            done = _release_claim(
                ec2,
                ledger,
                states,
                helper_concurrency,
                claim["snapshot_id"],
                change.execution,
                reason,
            )
            if done:
                released.append(done)
        elif claim["helper"]:
            # A cleanup that could not finish closed the claim but kept the turn.
            give_back_helper(
                ec2,
                ledger,
                states,
                claim["helper"],
                change.execution,
                claim["snapshot_id"],
                helper_concurrency,
            )
    removed, pending, left = _remove_volumes(ec2, disk_tool, change.execution)
    if pending and clock.now() < change.ended_at + DETACH_PATIENCE:
        raise CleanupPending(f"waiting for {', '.join(pending)} to detach before deleting")
    left += [
        f"{what}: the forced detach has not finished; delete it once detached" for what in pending
    ]
    summary: dict[str, Any] = {
        "execution": change.execution,
        "status": change.status,
        "released": released,
        "volumes_removed": removed,
        "left": left,
    }
    if not (released or removed or left):
        if failed_before_any_restore(change, claims=claims):
            _alert_refused(sns, change, alert_topic_arn)
            summary["refused"] = True
            return summary
        logger.info("nothing left to release: the execution cleaned up after itself")
        return summary
    for _ in left:
        count(TEMPORARY_VOLUME_LEFT)
    # A retry after CleanupPending finds the claims released already: name them all the same.
    released = _released_earlier(ec2, ledger, change.execution, reason, released) + released
    summary["released"] = released
    if alert_topic_arn:
        alert = release_alert(change, released=released, removed=removed, left=left)
        sns.publish(alert_topic_arn, alert.subject, alert.message)
    logger.info("released", extra={"summary": summary})
    return summary


def _alert_refused(sns: Sns, change: StatusChange, alert_topic_arn: str) -> None:
    """No cleanup ran (it runs per restore) and nothing alerted: say so once, here.

    EventBridge delivers at least once: a rare second delivery alerts a second time."""
    reason = reason_of(
        {"Error": change.error or "UnknownError", "Cause": change.cause}, MAX_CAUSE_IN_ALERT
    ).removesuffix(": ")  # no cause given
    logger.warning("the execution failed before any restore", extra={"reason": reason})
    count(REQUEST_REFUSED)
    if alert_topic_arn:
        alert = refused_alert(change, reason=reason)
        sns.publish(alert_topic_arn, alert.subject, alert.message)


def _release_claim(
    ec2: Ec2,
    ledger: Ledger,
    states: StepFunctions,
    helper_concurrency: int,
    snapshot_id: str,
    execution: str,
    reason: str,
) -> dict[str, str] | None:
    """Close the claim (its turn or place in line too); mark the snapshot failed if no verdict."""
    held = ledger.claim_of(snapshot_id)  # the index can lag: act on the item as it is now
    if held.get("execution") != execution or held.get("status") != RUNNING:
        return None
    verdict = _verdict_by(ec2, snapshot_id, execution)
    if verdict is None and _verified_by_another(ec2, snapshot_id, execution):
        # A re-verification that died: its outcome beside the verdict, which stands.
        record_reverified(ec2, snapshot_id, tags.FAILED, reason, execution)
        verdict = {tags.STATUS: tags.VERIFIED, tags.REASON: f"re-verification: {reason}"}
    elif verdict is None:
        verdict = record_failed(ec2, snapshot_id, reason, execution)
    ledger.finish(snapshot_id, execution, verdict[tags.STATUS])
    if held.get("helper"):
        # Its turn, or its place in line if it died waiting for one.
        give_back_helper(
            ec2, ledger, states, held["helper"], execution, snapshot_id, helper_concurrency
        )
    count(CLAIM_RELEASED)
    return {
        "snapshot_id": snapshot_id,
        "status": verdict[tags.STATUS],
        "reason": verdict.get(tags.REASON, ""),
        "helper": held.get("helper", ""),
    }


def _verdict_by(ec2: Ec2, snapshot_id: str, execution: str) -> dict[str, str] | None:
    """The verdict this execution wrote on the snapshot, if any; a deleted snapshot's is failed."""
    try:
        snapshot_tags = tags.as_dict(ec2.snapshot(snapshot_id).get("Tags"))
    except SnapshotNotFound:
        return {tags.STATUS: tags.FAILED, tags.REASON: "the snapshot no longer exists"}
    if snapshot_tags.get(tags.EXECUTION) == execution and snapshot_tags.get(tags.STATUS):
        return snapshot_tags
    return None


def _verified_by_another(ec2: Ec2, snapshot_id: str, execution: str) -> bool:
    """Whether another execution's verdict says the snapshot verified (so that this one,
    which claimed it, was re-verifying it)."""
    try:
        snapshot_tags = tags.as_dict(ec2.snapshot(snapshot_id).get("Tags"))
    except SnapshotNotFound:
        return False
    return (
        snapshot_tags.get(tags.STATUS) == tags.VERIFIED
        and snapshot_tags.get(tags.EXECUTION) != execution
    )


def _remove_volumes(
    ec2: Ec2, disk_tool: DiskTool, execution: str
) -> tuple[list[str], list[str], list[str]]:
    """Force-detach and delete the execution's temporary volumes: (removed, pending, left)."""
    removed: list[str] = []
    pending: list[str] = []
    left: list[str] = []
    for volume in ec2.temporary_volumes(execution):
        volume_id = str(volume["VolumeId"])
        if volume.get("State") in {"deleting", "deleted"}:
            continue
        source = tags.as_dict(volume.get("Tags")).get(tags.SOURCE_SNAPSHOT, "")
        try:
            require_ours(volume, source)
            remove_temporary_volume(ec2, disk_tool, volume_id, source)
        except NotOurs as refusal:
            logger.warning("left untouched", extra={"volume_id": volume_id, "why": str(refusal)})
        except (CleanupPending, AwsThrottled):
            pending.append(describe_volume(volume))
        except ClientError as exc:
            left.append(f"{describe_volume(volume)}: {error_code(exc)}: {error_message(exc)}")
        else:
            removed.append(volume_id)
    return removed, pending, left


def _released_earlier(
    ec2: Ec2, ledger: Ledger, execution: str, reason: str, released_now: list[dict[str, str]]
) -> list[dict[str, str]]:
    """Claims an earlier call for this event released: their snapshot carries its reason."""
    now = {r["snapshot_id"] for r in released_now}
    earlier = []
    for claim in ledger.claims_of(execution):
        if claim["snapshot_id"] in now or claim["status"] == RUNNING:
            continue
        verdict = _verdict_by(ec2, claim["snapshot_id"], execution) or {}
        if verdict.get(tags.REASON) == reason:
            earlier.append(
                {
                    "snapshot_id": claim["snapshot_id"],
                    "status": verdict[tags.STATUS],
                    "reason": reason,
                    "helper": claim["helper"],
                }
            )
    return earlier
