"""The boot test's steps (docs/boot-test.md): each call looks at where the test is and takes
at most one step further; the state machine waits between calls.

plan -> first-boot (launched from the source's image) -> stopping -> swapping (launch root
detached and deleted, the consistent root created) -> attaching -> booting (started on the
consistent root; SSM Online or status checks, bounded) -> terminating -> done.
Every instance and volume touched is checked to be the boot test's own, of this execution.
"""

from datetime import datetime, timedelta
from typing import Any

from vss_restore import tags
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.sns import Sns
from vss_restore.aws.ssm import Ssm
from vss_restore.clock import iso
from vss_restore.errors import BootTestFailed, BootTestTimedOut, CleanupPending, NotOurs
from vss_restore.logic import boot_test as logic
from vss_restore.logic import fleet
from vss_restore.settings import Settings, require_boot_test

DONE = "done"
# Beyond the two boots' bound, the stop, swap and termination get this much in all.
SWAP_ALLOWANCE = timedelta(minutes=30)


def advance(
    ec2: Ec2,
    ssm: Ssm,
    sns: Sns,
    settings: Settings,
    *,
    execution: str,
    snapshot_id: str,
    state: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    state = dict(state or {"phase": "plan"})
    phase = str(state.get("phase", "plan"))
    if phase != "plan" and now > _at(str(state["give_up_at"])):
        raise BootTestTimedOut(
            f"the boot test of {snapshot_id} is still at {phase} at {iso(now)}, past its bound"
        )
    # Written out (not a table of functions): tests/security's call map follows each call.
    if phase == "plan":
        return _plan(ec2, ssm, sns, settings, execution, snapshot_id, state, now)
    if phase == "first-boot":
        return _first_boot(ec2, ssm, settings, execution, snapshot_id, state, now)
    if phase == "stopping":
        return _stopping(ec2, ssm, settings, execution, snapshot_id, state, now)
    if phase == "swapping":
        return _swapping(ec2, ssm, settings, execution, snapshot_id, state, now)
    if phase == "attaching":
        return _attaching(ec2, ssm, settings, execution, snapshot_id, state, now)
    if phase == "booting":
        return _booting(ec2, ssm, sns, settings, execution, snapshot_id, state, now)
    if phase == "terminating":
        return _terminating(ec2, ssm, settings, execution, snapshot_id, state, now)
    return {**state, "phase": DONE, "done": True}


def _plan(
    ec2: Ec2,
    ssm: Ssm,
    sns: Sns,
    settings: Settings,
    execution: str,
    snapshot_id: str,
    state: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    require_boot_test(settings)
    snapshot_tags = tags.as_dict(ec2.snapshot(snapshot_id).get("Tags"))
    instance_id = snapshot_tags.get(tags.INSTANCE_ID, "")
    instance = ec2.instance(instance_id) if instance_id else None
    image = ec2.image(str(instance.get("ImageId") or "")) if instance else None
    tested = [
        tags.as_dict(s.get("Tags")).get(tags.BOOT_TESTED_AT, "")
        for s in (ec2.snapshots_tagged(tags.INSTANCE_ID, instance_id) if instance_id else [])
        if tags.as_dict(s.get("Tags")).get(tags.RESOURCE) == tags.CONSISTENT_SNAPSHOT
    ]
    # Judged by SSM only where the clone's agent can reach SSM (the endpoints' group given).
    managed = (
        settings.boot_test_reaches_ssm
        and bool(instance_id)
        and instance_id in ssm.instance_information([instance_id])
    )
    decided = logic.plan(snapshot_tags, instance, image, tested, now, managed_by_ssm=managed)
    if decided.action == "skip":
        return {"phase": DONE, "done": True, "result": "skipped", "reason": decided.reason}
    if decided.action == "not-testable":
        _record(ec2, snapshot_id, tags.NOT_TESTABLE, decided.reason, now, 0)
        _alert(sns, settings, snapshot_id, tags.NOT_TESTABLE, decided.reason, execution)
        return {
            "phase": DONE,
            "done": True,
            "recorded": True,
            "result": tags.NOT_TESTABLE,
            "reason": decided.reason,
        }
    zone = str((instance or {}).get("Placement", {}).get("AvailabilityZone", ""))
    subnets = fleet.subnet_order(ec2.subnets(settings.boot_test_subnet_ids), zone)
    if not subnets:
        raise BootTestFailed(
            f"none of the boot test's subnets {settings.boot_test_subnet_ids} exist"
        )
    subnet_id, subnet_zone = subnets[0]
    launched = ec2.launch(
        logic.launch_request(settings, decided, subnet_id, execution, snapshot_id)
    )
    bound = timedelta(minutes=settings.helper_boot_minutes)
    return {
        "phase": "first-boot",
        "done": False,
        "instance_id": str(launched["InstanceId"]),
        "zone": subnet_zone,
        "root_device": decided.root_device,
        "criterion": decided.criterion,
        "launched_at": iso(now),
        "give_up_at": iso(now + 2 * bound + SWAP_ALLOWANCE),
    }


def _first_boot(
    ec2: Ec2,
    ssm: Ssm,
    settings: Settings,
    execution: str,
    snapshot_id: str,
    state: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    instance = _our_instance(ec2, state, execution)
    name = _state_of(instance)
    if name == "pending":
        return state
    if name != "running":
        raise BootTestFailed(f"the throwaway instance {state['instance_id']} is {name}")
    # Its fresh root (the image's own Windows) is thrown away: stop now, no need to wait
    # for that Windows to finish booting.
    ec2.stop_instance(str(state["instance_id"]))
    return {**state, "phase": "stopping"}


def _stopping(
    ec2: Ec2,
    ssm: Ssm,
    settings: Settings,
    execution: str,
    snapshot_id: str,
    state: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    instance = _our_instance(ec2, state, execution)
    name = _state_of(instance)
    if name == "stopping":
        return state
    if name != "stopped":
        raise BootTestFailed(f"the throwaway instance {state['instance_id']} is {name}")
    launch_root = _root_volume_of(instance, str(state["root_device"]))
    if launch_root:
        volume = ec2.volume(launch_root)
        if volume is None or not logic.is_ours(volume, tags.BOOT_TEST_INSTANCE, execution):
            raise NotOurs(f"{launch_root} is not the boot test's launch root; left untouched")
        ec2.detach_volume(launch_root, str(state["instance_id"]))
    root = ec2.boot_test_root(
        snapshot_id=snapshot_id,
        availability_zone=str(state["zone"]),
        client_token=logic.client_token("root", execution, snapshot_id),
        root_tags=logic.root_tags(execution, snapshot_id),
    )
    return {
        **state,
        "phase": "swapping",
        "first_run_ended_at": iso(now),
        "launch_root": launch_root,
        "root_volume": root,
    }


def _swapping(
    ec2: Ec2,
    ssm: Ssm,
    settings: Settings,
    execution: str,
    snapshot_id: str,
    state: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    launch_root = str(state.get("launch_root") or "")
    if launch_root:
        volume = ec2.volume(launch_root)
        if volume is not None:
            if volume.get("State") != "available":
                return state  # still detaching
            if not logic.is_ours(volume, tags.BOOT_TEST_INSTANCE, execution):
                raise NotOurs(f"{launch_root} is not the boot test's launch root; left untouched")
            ec2.delete_volume(launch_root)
            return state
    root = _our_volume(ec2, str(state["root_volume"]), execution)
    if root.get("State") == "error":
        raise BootTestFailed(f"the volume {state['root_volume']} from {snapshot_id} failed")
    if root.get("State") != "available":
        return state
    ec2.attach_volume(
        str(state["root_volume"]), str(state["instance_id"]), str(state["root_device"])
    )
    return {**state, "phase": "attaching", "launch_root": ""}


def _attaching(
    ec2: Ec2,
    ssm: Ssm,
    settings: Settings,
    execution: str,
    snapshot_id: str,
    state: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    root = _our_volume(ec2, str(state["root_volume"]), execution)
    attachments = root.get("Attachments") or []
    if not attachments or attachments[0].get("State") != "attached":
        return state
    ec2.start_instance(str(state["instance_id"]))
    return {**state, "phase": "booting", "started_at": iso(now)}


def _booting(
    ec2: Ec2,
    ssm: Ssm,
    sns: Sns,
    settings: Settings,
    execution: str,
    snapshot_id: str,
    state: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    instance_id = str(state["instance_id"])
    instance = _our_instance(ec2, state, execution)
    name = _state_of(instance)
    started = _at(str(state["started_at"]))
    waited = int((now - started).total_seconds())
    if name not in {"pending", "running"}:
        result, reason = tags.FAILED, f"the instance went {name} {waited} s after its start"
    else:
        info = ssm.instance_information([instance_id]).get(instance_id, {})
        system, checks = ec2.status_checks(instance_id)
        seen = logic.boot_seen(
            str(state["criterion"]), str(info.get("PingStatus", "")), system, checks
        )
        bound = timedelta(minutes=settings.helper_boot_minutes)
        if seen:
            result, reason = tags.BOOTED, f"{seen} {waited} s after the start"
        elif now - started < bound:
            return state
        else:
            wanted = "SSM Online" if state["criterion"] == logic.BY_SSM else "status checks ok"
            result = tags.FAILED
            reason = (
                f"not {wanted} {settings.helper_boot_minutes} min after the start"
                f" (system status {system or 'none'}, instance status {checks or 'none'})"
            )
    seconds = logic.billed_seconds(
        [
            (str(state["launched_at"]), str(state["first_run_ended_at"])),
            (str(state["started_at"]), iso(now)),
        ]
    )
    if settings.helper_hourly_price:
        reason += "; " + logic.cost_text(seconds, settings.helper_hourly_price)
    _record(ec2, snapshot_id, result, reason, now, seconds)
    if result != tags.BOOTED:
        _alert(sns, settings, snapshot_id, result, reason, execution)
    ec2.terminate_instance(instance_id)
    return {**state, "phase": "terminating", "recorded": True, "result": result, "reason": reason}


def _terminating(
    ec2: Ec2,
    ssm: Ssm,
    settings: Settings,
    execution: str,
    snapshot_id: str,
    state: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    instance = ec2.instance(str(state["instance_id"]))
    if instance is not None and _state_of(instance) != "terminated":
        return state
    root = ec2.volume(str(state["root_volume"]))
    if root is not None:
        if root.get("State") != "available":
            return state
        if not logic.is_ours(root, tags.BOOT_TEST_ROOT, execution):
            raise NotOurs(f"{state['root_volume']} is not the boot test's root; left untouched")
        ec2.delete_volume(str(state["root_volume"]))
        return state
    return {**state, "phase": DONE, "done": True}


def clean_up(
    ec2: Ec2,
    sns: Sns,
    settings: Settings,
    *,
    execution: str,
    snapshot_id: str,
    state: dict[str, Any] | None,
    error: str,
    now: datetime,
) -> dict[str, Any]:
    """After any failure: the verdict (failed, with the error), then terminate the boot
    test's instances of this execution and delete its volumes; CleanupPending (retried)
    while a volume is still attached to a terminating instance."""
    state = dict(state or {})
    if not state.get("recorded"):
        reason = f"the boot test failed: {error}"[: tags.MAX_VALUE_LENGTH]
        # A retry (CleanupPending) sees the same input: record and alert once.
        found = tags.as_dict(ec2.snapshot(snapshot_id).get("Tags"))
        if found.get(tags.BOOT_TEST_REASON) != reason:
            _record(ec2, snapshot_id, tags.FAILED, reason, now, 0)
            _alert(sns, settings, snapshot_id, tags.FAILED, reason, execution)
        state.update(recorded=True, result=tags.FAILED, reason=reason)
    waiting = []
    for instance in ec2.instances_tagged(tags.EXECUTION, execution):
        if logic.is_ours(instance, tags.BOOT_TEST_INSTANCE, execution):
            if _state_of(instance) != "shutting-down":
                ec2.terminate_instance(str(instance["InstanceId"]))
            waiting.append(str(instance["InstanceId"]))
    for volume in ec2.volumes_tagged(tags.EXECUTION, execution):
        ours = logic.is_ours(volume, tags.BOOT_TEST_ROOT, execution) or logic.is_ours(
            volume, tags.BOOT_TEST_INSTANCE, execution
        )
        if not ours or volume.get("State") in {"deleting", "deleted"}:
            continue
        if volume.get("State") != "available":
            waiting.append(str(volume["VolumeId"]))
            continue
        ec2.delete_volume(str(volume["VolumeId"]))
    if waiting:
        raise CleanupPending(f"the boot test waits for {', '.join(waiting)} to go")
    return {**state, "phase": DONE, "done": True}


def _record(
    ec2: Ec2, snapshot_id: str, result: str, reason: str, now: datetime, seconds: int
) -> None:
    ec2.tag(snapshot_id, logic.verdict_tags(result, reason, now, seconds))


def _alert(
    sns: Sns, settings: Settings, snapshot_id: str, result: str, reason: str, execution: str
) -> None:
    if settings.alert_topic_arn:
        alert = logic.failure_alert(snapshot_id, result, reason, execution)
        sns.publish(settings.alert_topic_arn, alert.subject, alert.message)


def _our_instance(ec2: Ec2, state: dict[str, Any], execution: str) -> dict[str, Any]:
    instance = ec2.instance(str(state["instance_id"]))
    if instance is None:
        raise BootTestFailed(f"the throwaway instance {state['instance_id']} is gone")
    if not logic.is_ours(instance, tags.BOOT_TEST_INSTANCE, execution):
        raise NotOurs(f"{state['instance_id']} is not the boot test's instance; left untouched")
    return instance


def _our_volume(ec2: Ec2, volume_id: str, execution: str) -> dict[str, Any]:
    volume = ec2.volume(volume_id)
    if volume is None:
        raise BootTestFailed(f"the boot test's root {volume_id} is gone")
    if not logic.is_ours(volume, tags.BOOT_TEST_ROOT, execution):
        raise NotOurs(f"{volume_id} is not the boot test's root; left untouched")
    return volume


def _state_of(instance: dict[str, Any]) -> str:
    return str((instance.get("State") or {}).get("Name", ""))


def _root_volume_of(instance: dict[str, Any], root_device: str) -> str:
    for mapping in instance.get("BlockDeviceMappings") or []:
        if mapping.get("DeviceName") == root_device:
            return str((mapping.get("Ebs") or {}).get("VolumeId", ""))
    return ""


def _at(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))
