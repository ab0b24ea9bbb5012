"""The helper fleet's steps: give a restore a helper (reuse one, or launch one), wait for a
launched one to come Online, and terminate the helpers no restore needs any more."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vss_restore import clock, turns
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.places import Place, Places
from vss_restore.aws.ssm import Ssm
from vss_restore.aws.states import StepFunctions
from vss_restore.errors import (
    HelperCapacityShort,
    HelperImageNotUsable,
    HelperLaunchDelayed,
    HelperNeverOnline,
)
from vss_restore.logic.fleet import (
    DRAINED,
    DRAINING,
    IDLE,
    ORPHAN,
    TERMINATE,
    TOO_OLD,
    HelperSeen,
    client_token,
    image_problems,
    is_our_helper,
    launch_request,
    over_age,
    retirement,
    subnet_order,
)
from vss_restore.logic.helper import Helper, pick_helper, tied_zones
from vss_restore.observability import logger
from vss_restore.settings import Settings

RUNNING = "running"
# How long after its launch a helper missing from DescribeInstances is not yet judged gone.
LAUNCH_VISIBLE_SECONDS = 120
# A helper in these states will not revert anything any more (someone stopped it, or it was
# terminated): EC2 instance lifecycle, User Guide "Instance state changes".
GONE = frozenset({"shutting-down", "terminated", "stopping", "stopped"})


def _epoch() -> int:
    return int(clock.now().timestamp())


def helper_image(ec2: Ec2, ssm: Ssm, settings: Settings) -> str:
    """The AMI to launch: HelperImage itself, or the AMI its SSM parameter names now; refused
    (HelperImageNotUsable) unless it exists, is Windows and fits the instance type."""
    image_id = settings.helper_image
    if image_id.startswith("/"):
        value = ssm.parameter(image_id)
        if value is None or not value.startswith("ami-"):
            raise HelperImageNotUsable(
                f"HelperImage {image_id}: no such SSM parameter, or it names no AMI ({value})"
            )
        image_id = value
    problems = image_problems(
        ec2.image(image_id),
        settings.helper_instance_type,
        ec2.architectures(settings.helper_instance_type),
    )
    if problems:
        resolved = "" if image_id == settings.helper_image else f" ({image_id})"
        raise HelperImageNotUsable(
            f"HelperImage {settings.helper_image}{resolved} " + "; ".join(problems)
        )
    return image_id


def prepare(
    ec2: Ec2,
    ssm: Ssm,
    ledger: Ledger,
    places: Places,
    settings: Settings,
    *,
    execution: str,
    snapshot_id: str,
    source_volume_id: str,
) -> dict[str, Any]:
    """A helper for this restore: a running Online one of ours with a free turn, else a new
    one (ready False: it boots), else the least busy Online one (its line), else later."""
    image_id = helper_image(ec2, ssm, settings)  # before anything is created
    # The source volume's zone is the one preferred (module docstring of logic/fleet.py).
    source_zone = SourceZone(ec2, source_volume_id)
    helpers = ec2.our_helpers()
    # A helper past HelperMaxHours drains: it finishes what it holds and takes nothing new.
    draining = {
        str(i["InstanceId"])
        for i in helpers
        if over_age(_age_seconds(i), settings.helper_max_hours)
    }
    online = [h for h in _online_helpers(helpers, ssm) if h.instance_id not in draining]
    wait = settings.max_wait_hours * 3600
    loads = {
        h.instance_id: turns.load(ledger, h.instance_id, max_wait_seconds=wait) for h in online
    }
    free = [h for h in online if loads[h.instance_id] < settings.helper_concurrency]
    if free:
        zone = source_zone.among(tied_zones(free, loads))
        return _reuse(places, settings, pick_helper(free, loads, zone, snapshot_id))
    owner = f"{execution}|{snapshot_id}"
    place = places.take(owner, settings.max_helpers, _epoch())
    if place is None and _free_places_of_lost(places, settings, helpers):
        # A helper terminated by someone gave its place back now, not at the next retirement.
        place = places.take(owner, settings.max_helpers, _epoch())
    if place is not None and place.instance_id in draining:
        place = None  # the helper this restore launched drains: its place is not ours to use
    if place is None:
        if online:  # every place taken: wait in the line of the least busy helper
            zone = source_zone.among(tied_zones(online, loads))
            return _reuse(places, settings, pick_helper(online, loads, zone, snapshot_id))
        raise HelperLaunchDelayed(
            f"all {settings.max_helpers} places of the fleet (MaxHelpers) hold helpers still"
            " booting or draining (past HelperMaxHours): trying again later"
        )
    if place.instance_id:  # a retry after our launch succeeded
        instance = ec2.instance(place.instance_id) or {}
        zone = instance.get("Placement", {}).get("AvailabilityZone", "")
        return {"instance_id": place.instance_id, "availability_zone": zone, "ready": False}
    return _launch(ec2, places, settings, place, image_id, execution, snapshot_id, source_zone)


@dataclass
class SourceZone:
    """The source volume's zone, looked up (DescribeVolumes, from the account's describe
    bucket) only when it decides something: a choice between more than one zone. One zone
    among the options, or no source volume, needs no look."""

    ec2: Ec2
    volume_id: str
    zone: str | None = None

    def among(self, zones: Iterable[str]) -> str:
        if not self.volume_id or len(set(zones)) < 2:
            return ""
        if self.zone is None:
            volume = self.ec2.volume(self.volume_id) or {}
            self.zone = str(volume.get("AvailabilityZone", ""))
        return self.zone


def _reuse(places: Places, settings: Settings, helper: Helper) -> dict[str, Any]:
    for place in places.all(settings.max_helpers):
        if place.instance_id == helper.instance_id:
            places.note_used(place, _epoch())
    return {**helper.as_dict(), "ready": True}


def _free_places_of_lost(places: Places, settings: Settings, helpers: list[dict[str, Any]]) -> bool:
    """Give back the places whose helper is terminated (gone from `our_helpers`); whether any
    was. A stopped helper keeps its place until the retirement terminates it (idle)."""
    living = {str(i["InstanceId"]) for i in helpers}
    # EC2's API is eventually consistent ("Eventual consistency in the Amazon EC2 API"): an
    # instance just launched may not be listed yet; its place is not judged that soon.
    settled = _epoch() - LAUNCH_VISIBLE_SECONDS
    lost = [
        p
        for p in places.all(settings.max_helpers)
        if p.instance_id and p.instance_id not in living and p.since < settled
    ]
    for place in lost:
        places.free(place)
    return bool(lost)


def _online_helpers(helpers: list[dict[str, Any]], ssm: Ssm) -> list[Helper]:
    running = [i for i in helpers if i.get("State", {}).get("Name") == RUNNING]
    if not running:
        return []
    agents = ssm.instance_information([str(i["InstanceId"]) for i in running])
    return [
        Helper(str(i["InstanceId"]), str(i["Placement"]["AvailabilityZone"]))
        for i in running
        if agents.get(str(i["InstanceId"]), {}).get("PingStatus") == "Online"
    ]


def _launch(
    ec2: Ec2,
    places: Places,
    settings: Settings,
    place: Place,
    image_id: str,
    execution: str,
    snapshot_id: str,
    source_zone: "SourceZone",
) -> dict[str, Any]:
    """RunInstances in the source's zone first, then the other subnets; the place is given
    back when no launch is possible now."""
    shortages = []
    try:
        subnets = ec2.subnets(settings.helper_subnet_ids)
        first = source_zone.among(str(s.get("AvailabilityZone", "")) for s in subnets)
        for subnet_id, zone in subnet_order(subnets, first):
            token = client_token(execution, snapshot_id, subnet_id)
            request = launch_request(settings, image_id, subnet_id, token, execution)
            try:
                instance = ec2.launch(request)
            except HelperCapacityShort as exc:
                shortages.append(str(exc))
                continue
            places.note_instance(place, str(instance["InstanceId"]))
            logger.info("helper launched", extra={"instance_id": instance["InstanceId"]})
            return {
                "instance_id": instance["InstanceId"],
                "availability_zone": zone,
                "ready": False,
            }
    except HelperLaunchDelayed:
        places.free(place)
        raise
    places.free(place)
    raise HelperLaunchDelayed(
        f"no capacity for {settings.helper_instance_type} in any of HelperSubnetIds: "
        + " | ".join(shortages or ["none of the subnets exists"])
    )


def online(ec2: Ec2, ssm: Ssm, places: Places, settings: Settings, instance_id: str) -> bool:
    """Whether the launched helper is SSM Online yet; past HelperBootMinutes (or gone), it is
    terminated, its place given back, and the restore fails with HelperNeverOnline."""
    instance = ec2.instance(instance_id)
    state = (instance or {}).get("State", {}).get("Name", "terminated")
    if state == RUNNING:
        agent = ssm.instance_information([instance_id]).get(instance_id, {})
        if agent.get("PingStatus") == "Online" and agent.get("PlatformType") == "Windows":
            return True
    booting = _age_seconds(instance) if instance else 0
    if state not in GONE and booting < settings.helper_boot_minutes * 60:
        return False
    why = (
        f"is {state}"
        if state in GONE
        else f"was not SSM Online {settings.helper_boot_minutes} minutes after launch"
        " (HelperBootMinutes; its subnet must reach ssm, ssmmessages and ec2messages)"
    )
    _retire(ec2, places, settings, instance, why, instance_id)
    raise HelperNeverOnline(f"helper {instance_id} {why}; it was terminated")


def retire_idle(
    ec2: Ec2, ledger: Ledger, states: StepFunctions, places: Places, settings: Settings
) -> dict[str, list[str]]:
    """Terminate each helper of ours nobody holds or waits for since HelperIdleMinutes, with
    no place in the ledger (an orphan), or past HelperMaxHours once drained; send the line of
    a draining one elsewhere; free dead places. What became of which helper
    (logic/fleet.py `retirement`)."""
    now = _epoch()
    taken = places.all(settings.max_helpers)
    by_instance = {p.instance_id: p for p in taken if p.instance_id}
    retired: dict[str, list[str]] = {
        outcome: [] for outcome in (IDLE, TOO_OLD, ORPHAN, DRAINED, DRAINING)
    }
    helpers = ec2.our_helpers()
    for instance in helpers:
        instance_id = str(instance["InstanceId"])
        place = by_instance.get(instance_id)
        outcome = retirement(
            _seen(ledger, places, place, instance, now, settings),
            max_hours=settings.helper_max_hours,
            idle_minutes=settings.helper_idle_minutes,
            boot_minutes=settings.helper_boot_minutes,
            lease_seconds=turns.TURN_LEASE_SECONDS,
        )
        if outcome == DRAINING:
            why = f"is past HelperMaxHours {settings.helper_max_hours} and drains"
            told = turns.send_line_elsewhere(ledger, states, instance_id, why)
            logger.info("helper draining", extra={"instance_id": instance_id, "told": told})
        elif outcome in TERMINATE:
            _retire(ec2, places, settings, instance, outcome, instance_id)
        else:
            continue
        retired[outcome].append(instance_id)
    living = {str(i["InstanceId"]) for i in helpers}
    for place in taken:  # a place whose helper is gone, or whose launch died long ago
        stale = not place.instance_id and now - place.since > settings.helper_boot_minutes * 60
        if (place.instance_id and place.instance_id not in living) or stale:
            places.free(place)
    return retired


def _idle_seconds(ledger: Ledger, place: Place, now: int) -> int:
    """Since the helper's last restore: its turn given back, or (a restore seen on it by an
    earlier schedule run, or given it) its place's note, whichever is later."""
    return now - max(place.used, turns.last_freed(ledger, place.instance_id))


def _seen(
    ledger: Ledger,
    places: Places,
    place: Place | None,
    instance: dict[str, Any],
    now: int,
    settings: Settings,
) -> HelperSeen:
    """The helper as `retirement` judges it. A busy helper seen now has its idle time start
    again (at most one schedule period late)."""
    busy = place is not None and (
        turns.load(ledger, place.instance_id, max_wait_seconds=settings.max_wait_hours * 3600) > 0
    )
    if place is not None and busy:
        places.note_used(place, now)
    return HelperSeen(
        age_seconds=_age_seconds(instance),
        placed=place is not None,
        booting=place is not None and place.used == place.since,
        busy=busy,
        idle_seconds=_idle_seconds(ledger, place, now) if place is not None and not busy else 0,
    )


def _retire(
    ec2: Ec2,
    places: Places,
    settings: Settings,
    instance: dict[str, Any] | None,
    why: str,
    instance_id: str,
) -> None:
    if instance and is_our_helper(instance) and instance["State"]["Name"] != "terminated":
        ec2.terminate_helper(instance)
        logger.info("helper terminated", extra={"instance_id": instance_id, "why": why})
    for place in _places_of(places, settings, instance_id):
        places.free(place)


def _places_of(places: Places, settings: Settings, instance_id: str) -> Sequence[Place]:
    if not instance_id:
        return []
    return [p for p in places.all(settings.max_helpers) if p.instance_id == instance_id]


def _age_seconds(instance: dict[str, Any] | None) -> float:
    launched = (instance or {}).get("LaunchTime")
    if not isinstance(launched, datetime):
        return 0.0
    return (clock.now() - launched).total_seconds()
