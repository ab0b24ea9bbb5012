"""The daily reconciliation: restore the VSS snapshots no event restored, find orphan volumes,
remove what a lost execution's boot test left (BootTest=Weekly).

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
    TERMINATED,
    BootTestLeftover,
    Orphan,
    aged_out_alert,
    boot_test_bound,
    boot_test_left,
    boot_test_leftover,
    boot_test_leftovers_alert,
    claim_in_hand,
    execution_name,
    is_boot_test_resource,
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
    leftovers = sweep_boot_tests(ec2, sfn, settings, now) if settings.boot_test != "never" else []
    if leftovers:
        for left_over in leftovers:
            logger.warning("boot-test leftover", extra={"leftover": left_over.as_dict()})
        if settings.alert_topic_arn:
            alert = boot_test_leftovers_alert(
                leftovers, bound=boot_test_bound(settings.helper_boot_minutes)
            )
            sns.publish(settings.alert_topic_arn, alert.subject, alert.message)
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
        "boot_test_leftovers": [left_over.resource_id for left_over in leftovers],
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


# After terminating a boot test's instance, look this long for its root to come free (EC2's
# termination takes about a minute: MODELLED 30 s, simulator/world.py); what is still
# attached then is deleted by the next run. The function's timeout is 300 s.
BOOT_TEST_VOLUME_WAIT_SECONDS = 120
BOOT_TEST_VOLUME_PAUSE_SECONDS = 10
GONE_VOLUME_STATES = frozenset({"deleting", "deleted"})
DELETABLE_VOLUME_STATES = frozenset({"available", "error"})


def sweep_boot_tests(
    ec2: Ec2, sfn: StepFunctions, settings: Settings, now: datetime
) -> list[BootTestLeftover]:
    """The boot test's instances and volumes (tagged so) of this stack's executions that no
    longer run, or that Step Functions does not know and are older than the boot test's
    bound: terminate the instances, delete the volumes once free. docs/boot-test.md."""
    statuses: dict[str, str] = {}

    def left(resource: dict[str, Any]) -> str | None:
        """The execution's status if the resource is a lost boot test's, else None."""
        if not is_boot_test_resource(resource):
            return None
        execution = tags.as_dict(resource.get("Tags")).get(tags.EXECUTION, "")
        if not is_execution_of(execution, settings.state_machine_arn):
            # Another stack's boot test, or one without its execution: not ours to judge.
            logger.info("not this stack's boot test", extra={"resource": _id_of(resource)})
            return None
        if execution not in statuses:
            statuses[execution] = sfn.status(execution)
        created = resource.get("LaunchTime") or resource.get("CreateTime") or now
        found = statuses[execution]
        if not boot_test_left(
            found, created, now, helper_boot_minutes=settings.helper_boot_minutes
        ):
            return None
        return found

    leftovers: list[BootTestLeftover] = []
    actions = 0
    for instance in ec2.instances_tagged(tags.RESOURCE, tags.BOOT_TEST_INSTANCE):
        status = left(instance)
        if status is None:
            continue
        found = boot_test_leftover(instance, status)
        if actions < MAX_ACTIONS_PER_RUN:
            actions += 1
            found = replace(found, action=_terminate(ec2, instance))
        else:
            found = replace(found, action="left for the next run")
        leftovers.append(found)
    waiting: dict[str, BootTestLeftover] = {}
    for kind in (tags.BOOT_TEST_ROOT, tags.BOOT_TEST_INSTANCE):
        for volume in ec2.volumes_tagged(tags.RESOURCE, kind):
            if volume.get("State") in GONE_VOLUME_STATES:
                continue
            status = left(volume)
            if status is None:
                continue
            found = boot_test_leftover(volume, status)
            if volume.get("State") in DELETABLE_VOLUME_STATES and actions < MAX_ACTIONS_PER_RUN:
                actions += 1
                leftovers.append(replace(found, action=_delete(ec2, volume)))
            elif actions < MAX_ACTIONS_PER_RUN:
                waiting[found.resource_id] = found  # attached to the instance going away
            else:
                leftovers.append(replace(found, action="left for the next run"))
    leftovers += _delete_once_free(ec2, waiting, actions)
    return leftovers


def _delete_once_free(
    ec2: Ec2, waiting: dict[str, BootTestLeftover], actions: int
) -> list[BootTestLeftover]:
    """Delete each volume once its terminated instance let it go (or say EC2 deleted it with
    the instance: DeleteOnTermination), looking for a bounded while."""
    done: list[BootTestLeftover] = []
    waited = 0
    while waiting:
        for volume_id, found in list(waiting.items()):
            volume = ec2.volume(volume_id)
            if volume is None or volume.get("State") in GONE_VOLUME_STATES:
                done.append(replace(found, action="deleted with its instance"))
            elif volume.get("State") in DELETABLE_VOLUME_STATES:
                if actions >= MAX_ACTIONS_PER_RUN:
                    done.append(replace(found, action="left for the next run"))
                else:
                    actions += 1
                    done.append(replace(found, action=_delete(ec2, volume)))
            else:
                continue
            del waiting[volume_id]
        if not waiting or waited >= BOOT_TEST_VOLUME_WAIT_SECONDS:
            break
        clock.sleep(BOOT_TEST_VOLUME_PAUSE_SECONDS)
        waited += BOOT_TEST_VOLUME_PAUSE_SECONDS
    done += [
        replace(found, action="still attached; deleted by the next run")
        for found in waiting.values()
    ]
    return done


def _terminate(ec2: Ec2, instance: dict[str, Any]) -> str:
    """Terminate a lost boot test's throwaway instance; nothing else (and IAM agrees)."""
    if not is_boot_test_resource(instance):  # checked by the caller; once more, here
        return "left untouched: not tagged as the boot test's"
    try:
        ec2.terminate_instance(str(instance["InstanceId"]))
    except AwsThrottled:
        return "left for the next run: throttled"
    except ClientError as exc:
        return f"left: {error_code(exc)}: {error_message(exc)}"
    return TERMINATED


def _delete(ec2: Ec2, volume: dict[str, Any]) -> str:
    """Delete a lost boot test's free volume; nothing else (and IAM agrees)."""
    if not is_boot_test_resource(volume):
        return "left untouched: not tagged as the boot test's"
    try:
        ec2.delete_volume(str(volume["VolumeId"]))
    except AwsThrottled:
        return "left for the next run: throttled"
    except ClientError as exc:
        return f"left: {error_code(exc)}: {error_message(exc)}"
    return DELETED


def _id_of(resource: dict[str, Any]) -> str:
    return str(resource.get("InstanceId") or resource.get("VolumeId"))
