"""The daily retention: delete the snapshots of ours that the keeps no longer need.

A function of its own rather than a step of the reconciliation: the one role in the stack
that may delete snapshots does nothing else (and may do it only when DeleteExpiredSnapshots
is "true"), and a retention that fails leaves the night's restores untouched.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from vss_restore import clock, tags
from vss_restore.aws import error_code, error_message
from vss_restore.aws.ec2 import Ec2, is_snapshot_ours, require_snapshot_ours
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.sns import Sns
from vss_restore.errors import AwsThrottled, NotOurs
from vss_restore.logic import retention as rules
from vss_restore.logic.alert import Alert
from vss_restore.observability import (
    SNAPSHOTS_DELETED,
    SNAPSHOTS_EXPIRED,
    SNAPSHOTS_KEPT,
    logger,
    metrics,
)
from vss_restore.settings import Settings

DELETED = "deleted"


def policy_of(settings: Settings) -> rules.Policy:
    return rules.Policy(
        keep_daily=settings.keep_daily,
        keep_weekly=settings.keep_weekly,
        keep_monthly=settings.keep_monthly,
        one_copy=settings.one_copy,
        restore_days=settings.reconcile_days,
    )


def apply_retention(ec2: Ec2, ledger: Ledger, sns: Sns, settings: Settings) -> dict[str, Any]:
    now = clock.now()
    marker = (settings.vss_tag_key, settings.vss_tag_value)
    # Only ours are judged: the marker alone may be on anyone's snapshot, and tags can be
    # written by others (is_snapshot_ours reads the descriptions too).
    backups = [s for s in ec2.snapshots_tagged(*marker) if is_snapshot_ours(s, *marker)]
    consistent = [
        s
        for s in ec2.snapshots_tagged(tags.RESOURCE, tags.CONSISTENT_SNAPSHOT)
        if is_snapshot_ours(s, *marker)
    ]
    listed = {str(s["SnapshotId"]): s for s in [*backups, *consistent]}
    in_use = {str(v.get("SnapshotId")) for v in ec2.temporary_volumes() if v.get("SnapshotId")}
    verdicts = rules.decide(
        rules.copies(backups, consistent), policy_of(settings), now, in_use=in_use
    )
    expired = [v for v in verdicts if v.action == rules.DELETE]
    done: dict[str, str] = {}
    for position, verdict in enumerate(expired):
        if position == rules.MAX_DELETIONS_PER_RUN:
            done.update({v.snapshot_id: "left for the next run" for v in expired[position:]})
            break
        if verdict.kind == rules.BACKUP and rules.restoring(
            ledger.claim_of(verdict.snapshot_id), now
        ):
            done[verdict.snapshot_id] = "kept: an execution is restoring it"
            continue
        if settings.delete_expired_snapshots:
            done[verdict.snapshot_id] = _delete(ec2, settings, verdict, listed[verdict.snapshot_id])
    deleted = [snapshot_id for snapshot_id, outcome in done.items() if outcome == DELETED]
    kept = [v for v in verdicts if v.snapshot_id not in deleted]
    for name, value in (
        (SNAPSHOTS_KEPT, len(kept)),
        (SNAPSHOTS_EXPIRED, len(expired)),
        (SNAPSHOTS_DELETED, len(deleted)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if expired and settings.alert_topic_arn:
        alert = _alert(verdicts, settings, done)
        sns.publish(settings.alert_topic_arn, alert.subject, alert.message)
    summary = {
        "dry_run": not settings.delete_expired_snapshots,
        "kept": len(kept),
        "expired": [v.as_dict() for v in expired],
        "deleted": deleted,
        "not_deleted": {k: v for k, v in done.items() if v != DELETED},
        "per_drive": _per_drive(kept),
    }
    logger.info("retention applied", extra={"summary": summary})
    return summary


def _delete(ec2: Ec2, settings: Settings, verdict: rules.Verdict, snapshot: dict[str, Any]) -> str:
    """Delete one snapshot after checking its tags; what became of it."""
    try:
        # The tags as listed a moment ago; IAM checks them again at the call itself.
        require_snapshot_ours(snapshot, settings.vss_tag_key, settings.vss_tag_value)
        if verdict.holder:
            # One copy: the consistent snapshot says itself that it was verified, since the
            # verdict on its source goes with the source.
            source_tags = tags.as_dict(snapshot.get("Tags"))
            ec2.tag(
                verdict.holder,
                {
                    tags.STATUS: tags.VERIFIED,
                    tags.CHECKED_AT: source_tags.get(tags.CHECKED_AT, clock.iso(clock.now())),
                },
            )
        ec2.delete_snapshot(verdict.snapshot_id)
    except NotOurs as refusal:
        logger.warning("left untouched", extra={"snapshot_id": verdict.snapshot_id})
        return f"left untouched: {refusal}"
    except ClientError as exc:
        return f"left: {error_code(exc)}: {error_message(exc)}"
    except AwsThrottled as exc:  # the next run tries again
        return f"left: {type(exc).__name__}: {exc}"
    logger.info("snapshot deleted", extra={"verdict": verdict.as_dict()})
    return DELETED


def _per_drive(kept: list[rules.Verdict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for verdict in kept:
        counts[verdict.drive] = counts.get(verdict.drive, 0) + 1
    return counts


def _alert(verdicts: list[rules.Verdict], settings: Settings, done: dict[str, str]) -> Alert:
    lines = rules.summary_lines(verdicts, deleting=settings.delete_expired_snapshots, done=done)
    count = sum(v.action == rules.DELETE for v in verdicts)
    verb = "deleted" if settings.delete_expired_snapshots else "would be deleted (dry run)"
    return Alert(f"vss-restore: {count} expired snapshot(s) {verb}", "\n".join(lines))
