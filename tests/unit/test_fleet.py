"""HelperMode=fleet, the pure rules (logic/fleet.py) and the two fleet handlers' samples."""

from collections.abc import Callable
from typing import Any, cast

import pytest

from tests.unit.conftest import World
from vss_restore import fleet
from vss_restore.aws.ec2 import Ec2
from vss_restore.handlers import helper_online, retire_helpers
from vss_restore.logic.fleet import (
    DRAINED,
    DRAINING,
    IDLE,
    KEEP,
    ORPHAN,
    TOO_OLD,
    HelperSeen,
    image_problems,
    retirement,
    subnet_order,
)
from vss_restore.logic.helper import Helper, tied_zones
from vss_restore.turns import TURN_LEASE_SECONDS

WINDOWS = {"State": "available", "Platform": "windows", "Architecture": "x86_64"}


def test_a_windows_x86_image_fits_an_x86_type() -> None:
    assert image_problems(WINDOWS, "m6i.large", ["x86_64", "i386"]) == []


@pytest.mark.parametrize(
    ("image", "architectures", "problem"),
    [
        (None, ["x86_64"], "does not exist"),
        (
            {**WINDOWS, "Platform": None, "PlatformDetails": "Linux/UNIX"},
            ["x86_64"],
            "not a Windows",
        ),
        ({**WINDOWS, "Architecture": "arm64"}, ["x86_64"], "is arm64, not x86_64"),
        (WINDOWS, [], "EC2 knows no instance type"),
        ({**WINDOWS, "State": "deregistered"}, ["x86_64"], "not available"),
    ],
)
def test_an_image_no_helper_can_run_is_named_with_why(
    image: dict[str, Any] | None, architectures: list[str], problem: str
) -> None:
    assert problem in "; ".join(image_problems(image, "m6i.large", architectures))


def test_the_sources_zone_comes_first_then_the_operators_order() -> None:
    subnets = [
        {"SubnetId": "subnet-a", "AvailabilityZone": "us-east-1a"},
        {"SubnetId": "subnet-b", "AvailabilityZone": "us-east-1b"},
        {"SubnetId": "subnet-c", "AvailabilityZone": "us-east-1c"},
    ]
    assert [s for s, _ in subnet_order(subnets, "us-east-1b")] == [
        "subnet-b",
        "subnet-a",
        "subnet-c",
    ]


def test_a_running_online_helper_is_ready_at_once(
    world: World, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, stubbed: Any
) -> None:
    from vss_restore.aws.ssm import Ssm

    client, stubber = stubbed("ssm")
    stubber.add_response(
        "describe_instance_information",
        {
            "InstanceInformationList": [
                {"InstanceId": world.helper_id, "PingStatus": "Online", "PlatformType": "Windows"}
            ]
        },
        {"Filters": [{"Key": "InstanceIds", "Values": [world.helper_id]}]},
    )
    monkeypatch.setattr(helper_online, "Ssm", lambda: Ssm(client=client))

    result = helper_online.handler(world.event("helper_online"), lambda_context)

    assert result == {
        "instance_id": world.helper_id,
        "availability_zone": world.helper_zone,
        "ready": True,
    }


def test_the_retirement_schedule_does_nothing_in_named_mode(
    sample: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    assert retire_helpers.handler(sample("retire_helpers"), lambda_context) == {"retired": {}}


# --- the retirement: what becomes of each helper of ours -----------------------------------

HOUR = 3600
MAX_HOURS = 12


def judged(
    age_hours: float,
    *,
    placed: bool = True,
    booting: bool = False,
    busy: bool = False,
    idle_minutes: float = 0,
) -> str:
    seen = HelperSeen(
        age_seconds=age_hours * HOUR,
        placed=placed,
        booting=booting,
        busy=busy,
        idle_seconds=idle_minutes * 60,
    )
    return retirement(
        seen,
        max_hours=MAX_HOURS,
        idle_minutes=10,
        boot_minutes=20,
        lease_seconds=TURN_LEASE_SECONDS,
    )


@pytest.mark.parametrize(
    ("helper", "outcome"),
    [
        # No place in the ledger once past its boot: nothing will use it.
        ({"age_hours": 1, "placed": False}, ORPHAN),
        ({"age_hours": 13, "placed": False, "busy": True}, ORPHAN),
        # Past HelperMaxHours with a turn held or a restore in line: it drains.
        ({"age_hours": 12.01, "busy": True}, DRAINING),
        ({"age_hours": 17.9, "busy": True}, DRAINING),
        # Past HelperMaxHours, nothing on it: drained, terminated.
        ({"age_hours": 12.01}, DRAINED),
        # Past HelperMaxHours and the turn lease: terminated whatever it holds.
        ({"age_hours": 12 + TURN_LEASE_SECONDS / HOUR + 0.01, "busy": True}, TOO_OLD),
        # Young and nobody on it for HelperIdleMinutes.
        ({"age_hours": 2, "idle_minutes": 10}, IDLE),
        # Young and busy, or idle for less, or still booting for its restore, or just
        # launched with no place yet: kept.
        ({"age_hours": 2, "busy": True}, KEEP),
        ({"age_hours": 2, "idle_minutes": 9}, KEEP),
        ({"age_hours": 0.2, "booting": True, "idle_minutes": 12}, KEEP),
        ({"age_hours": 0.1, "placed": False}, KEEP),
        # Exactly HelperMaxHours old is not past it.
        ({"age_hours": 12, "busy": True}, KEEP),
    ],
)
def test_the_retirement_judges_each_helper(helper: dict[str, Any], outcome: str) -> None:
    assert judged(**helper) == outcome


class _Volumes:
    """An Ec2 stand-in that counts its DescribeVolumes."""

    def __init__(self, zone: str) -> None:
        self.zone = zone
        self.looks: list[str] = []

    def volume(self, volume_id: str) -> dict[str, Any]:
        self.looks.append(volume_id)
        return {"VolumeId": volume_id, "AvailabilityZone": self.zone}


def test_the_sources_zone_is_not_looked_up_when_one_zone_is_all_there_is_to_choose() -> None:
    ec2 = _Volumes("us-east-1b")
    zone = fleet.SourceZone(cast(Ec2, ec2), "vol-0source")

    assert zone.among(["us-east-1a", "us-east-1a"]) == ""
    assert ec2.looks == []


def test_the_sources_zone_is_looked_up_once_when_it_decides_between_zones() -> None:
    ec2 = _Volumes("us-east-1b")
    zone = fleet.SourceZone(cast(Ec2, ec2), "vol-0source")

    assert zone.among(["us-east-1a", "us-east-1b"]) == "us-east-1b"
    assert zone.among({"us-east-1a", "us-east-1c"}) == "us-east-1b"
    assert ec2.looks == ["vol-0source"]


def test_without_a_source_volume_no_zone_is_looked_up() -> None:
    ec2 = _Volumes("us-east-1b")

    assert fleet.SourceZone(cast(Ec2, ec2), "").among(["us-east-1a", "us-east-1b"]) == ""
    assert ec2.looks == []


def test_only_the_least_busy_helpers_zones_can_tie() -> None:
    helpers = [
        Helper("i-a", "us-east-1a"),
        Helper("i-b", "us-east-1b"),
        Helper("i-c", "us-east-1a"),
    ]

    assert tied_zones(helpers, {"i-a": 0, "i-b": 1, "i-c": 0}) == {"us-east-1a"}
    assert tied_zones(helpers, {"i-b": 0}) == {"us-east-1a", "us-east-1b"}
