"""The daily reconciliation: restore the VSS snapshots no event restored, find orphan volumes.

Events get lost and executions fail to start; executions die and leave volumes. Once a day
this looks at what is there instead of what was announced.
"""

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from vss_restore import clock, tags
from vss_restore.aws import error_code, error_message
from vss_restore.aws.ec2 import Ec2, require_ours
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.sns import Sns
from vss_restore.aws.states import RUNNING, StepFunctions, execution_arn
from vss_restore.cleanup import DiskTool, remove_temporary_volume
from vss_restore.errors import AwsThrottled, CleanupPending, InvalidRequest, NotOurs
from vss_restore.logic.reconciliation import (
    DELETED,
    MAX_ACTIONS_PER_RUN,
    MAX_AGED_OUT_PER_ALERT,
    Orphan,
    aged_out_alert,
    claim_in_hand,
    execution_name,
    is_execution_of,
    orphan,
    orphans_alert,
    restore_candidates,
)
from vss_restore.observability import (
    ORPHAN_VOLUMES_DELETED,
    ORPHAN_VOLUMES_FOUND,
    RECONCILE_RESTORES_REMAINING,
    RECONCILE_RESTORES_STARTED,
    logger,
    metrics,
)
from vss_restore.settings import Settings


def reconcile(
    ec2: Ec2,
    ledger: Ledger,
    sfn: StepFunctions,
    sns: Sns,
    settings: Settings,
    disk_tool: DiskTool,
) -> dict[str, Any]:
    if not settings.state_machine_arn:
        raise InvalidRequest("STATE_MACHINE_ARN is not set: there is nothing to start restores on")
    now = clock.now()
    restores = start_missing_restores(ec2, ledger, sfn, settings, now)
    aged_out = alert_aged_out(ledger, sns, settings)
    orphans = find_orphan_volumes(ec2, sfn, settings, now, disk_tool)
    deleted = [o.volume_id for o in orphans if o.action == DELETED]
    if orphans:
        for found in orphans:
            logger.warning("orphan temporary volume", extra={"orphan": found.as_dict()})
        if settings.alert_topic_arn:
            alert = orphans_alert(
                orphans, hours=settings.orphan_volume_hours, deleting=settings.delete_orphan_volumes
            )
            sns.publish(settings.alert_topic_arn, alert.subject, alert.message)
    for name, value in (
        (RECONCILE_RESTORES_STARTED, len(restores["restores_started"])),
        (RECONCILE_RESTORES_REMAINING, restores["restores_remaining"]),
        (ORPHAN_VOLUMES_FOUND, len(orphans)),
        (ORPHAN_VOLUMES_DELETED, len(deleted)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    summary = {
        **restores,
        "aged_out": aged_out,
        "orphans": [o.volume_id for o in orphans],
        "orphans_deleted": deleted,
    }
    logger.info("reconciled", extra={"summary": summary})
    return summary


def start_missing_restores(
    ec2: Ec2, ledger: Ledger, sfn: StepFunctions, settings: Settings, now: datetime
) -> dict[str, Any]:
    """Start a restore of each recent VSS snapshot that has no verdict and no live claim."""
    snapshots = [
        *ec2.completed_snapshots_tagged(settings.vss_tag_key, settings.vss_tag_value),
        # AWS's own VSS tooling: verified only (resolve.decide also wants AwsVssConfig).
        *ec2.completed_snapshots_tagged(tags.AWS_APP_CONSISTENT, "true"),
    ]
    candidates = restore_candidates(
        snapshots, settings, since=now - timedelta(days=settings.reconcile_days)
    )
    started: list[str] = []
    already: list[str] = []
    for position, snapshot in enumerate(candidates):
        if len(started) == MAX_ACTIONS_PER_RUN:
            remaining = len(candidates) - position
            logger.warning(f"{remaining} snapshot(s) left for the next run")
            return _restores(started, already, remaining)
        snapshot_id = str(snapshot["SnapshotId"])
        if claim_in_hand(ledger.claim_of(snapshot_id), now):
            continue
        name = execution_name(snapshot_id, now)
        # Started today already (by an earlier run, whatever became of it): not again today.
        if sfn.status(execution_arn(settings.state_machine_arn, name)) or not sfn.start(
            settings.state_machine_arn, name, {"snapshot_id": snapshot_id}
        ):
            already.append(snapshot_id)
            continue
        logger.info("restore started", extra={"snapshot_id": snapshot_id, "execution_name": name})
        started.append(snapshot_id)
    return _restores(started, already, 0)


def alert_aged_out(ledger: Ledger, sns: Sns, settings: Settings) -> list[str]:
    """One alert naming the snapshots whose restore waited in line longer than MaxWaitHours
    since the last run (each failed with WaitedTooLong, without an alert of its own)."""
    aged = ledger.aged_out(MAX_AGED_OUT_PER_ALERT)
    if not aged:
        return []
    logger.warning("restores waited too long", extra={"snapshots": aged})
    if settings.alert_topic_arn:
        alert = aged_out_alert(aged, max_wait_hours=settings.max_wait_hours)
        sns.publish(settings.alert_topic_arn, alert.subject, alert.message)
    for snapshot_id in aged:  # named once: forgotten only once the alert is out
        ledger.forget_aged_out(snapshot_id)
    return aged


def _restores(started: list[str], already: list[str], remaining: int) -> dict[str, Any]:
    return {
        "restores_started": started,
        "restores_already_started_today": already,
        "restores_remaining": remaining,
    }


def find_orphan_volumes(
    ec2: Ec2, sfn: StepFunctions, settings: Settings, now: datetime, disk_tool: DiskTool
) -> list[Orphan]:
    """Our temporary volumes older than the limit whose execution is not running."""
    cutoff = now - timedelta(hours=settings.orphan_volume_hours)
    statuses: dict[str, str] = {}
    orphans: list[Orphan] = []
    deletions = 0
    for volume in ec2.temporary_volumes():
        execution = tags.as_dict(volume.get("Tags")).get(tags.EXECUTION, "")
        if volume["CreateTime"] > cutoff or volume.get("State") in {"deleting", "deleted"}:
            continue
        if not is_execution_of(execution, settings.state_machine_arn):
            # Another stack's volume, or one without its execution: not ours to judge.
            logger.info("not this stack's", extra={"volume_id": volume["VolumeId"]})
            continue
        if execution not in statuses:
            statuses[execution] = sfn.status(execution)  # "" : Step Functions forgot it
        if statuses[execution] == RUNNING:
            continue
        found = orphan(volume, statuses[execution])
        if settings.delete_orphan_volumes:
            if deletions < MAX_ACTIONS_PER_RUN:
                deletions += 1
                found = replace(found, action=_remove(ec2, disk_tool, volume))
            else:
                found = replace(found, action="left for the next run")
        orphans.append(found)
    return orphans


def _remove(ec2: Ec2, disk_tool: DiskTool, volume: dict[str, Any]) -> str:
    """Remove an orphan like the failure cleanup does; what became of it."""
    volume_id = str(volume["VolumeId"])
    source = tags.as_dict(volume.get("Tags")).get(tags.SOURCE_SNAPSHOT, "")
    try:
        require_ours(volume, source)
        remove_temporary_volume(ec2, disk_tool, volume_id, source)
    except NotOurs as refusal:
        return f"left untouched: {refusal}"
    except (CleanupPending, AwsThrottled):
        return "force-detached; deleted by the next run"
    except ClientError as exc:
        return f"left: {error_code(exc)}: {error_message(exc)}"
    return DELETED
