"""Our EC2 mutating calls wait for their paced slot: spaced at the configured rate, waited
for inside the invocation when close, handed to the state machine when not."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from simulator import backup_retry
from tests.unit.conftest import LEDGER_TABLE
from tools.cfn_template import load_template
from vss_restore import clock, pacing
from vss_restore.aws.ledger import Ledger, pace_key
from vss_restore.errors import InvalidRequest, SlotTooFar
from vss_restore.handlers import attach_volume, create_volume
from vss_restore.logic import pacing as rules
from vss_restore.logic.pacing import ATTACH_VOLUME, CREATE_SNAPSHOT, CREATE_VOLUME
from vss_restore.settings import Settings

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)


class Frozen:
    """A clock that moves only when the code sleeps or a test lets time pass."""

    def __init__(self) -> None:
        self.moment = NOW
        self.slept: list[float] = []
        self.together = False  # True: each call is another Lambda at the same moment

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if not self.together:
            self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Frozen:
    moment = Frozen()
    monkeypatch.setattr(clock, "now", lambda: moment.moment)
    monkeypatch.setattr(clock, "sleep", moment.sleep)
    return moment


def _ledger() -> Ledger:
    return Ledger(LEDGER_TABLE, boto3.client("dynamodb", region_name="us-east-1"))


# --- the slot arithmetic ----------------------------------------------------------------


def test_a_free_pacer_gives_now_and_a_busy_one_its_next_slot() -> None:
    assert rules.take(None, 100.0, 0.5) == (100.0, 100.5)
    assert rules.take(90.0, 100.0, 0.5) == (100.0, 100.5)  # past: no burst is banked
    assert rules.take(103.0, 100.0, 0.5) == (103.0, 103.5)


@pytest.mark.parametrize("value", ["0", "-1", "5.01", "6", "nan", "inf", "fast", ""])
def test_a_pace_not_above_zero_or_above_the_buckets_refill_is_refused(value: str) -> None:
    with pytest.raises(InvalidRequest, match="pace of ec2:CreateVolume"):
        rules.rate(CREATE_VOLUME, value)


def test_the_paces_are_read_from_the_environment_and_refused_when_too_fast() -> None:
    assert Settings.from_environment({}).paced_rates == rules.DEFAULT_RATES
    assert Settings.from_environment({"PACE_CREATE_SNAPSHOT": "0.5"}).paced_rates[
        CREATE_SNAPSHOT
    ] == pytest.approx(0.5)
    with pytest.raises(InvalidRequest, match="at most its bucket's refill, 5"):
        Settings.from_environment({"PACE_ATTACH_VOLUME": "7"})


def test_the_templates_defaults_are_the_paces_and_leave_the_operator_headroom() -> None:
    template = load_template(REPO / "template.yaml")
    parameters = template["Parameters"]
    for action, name in (
        (CREATE_SNAPSHOT, "PaceCreateSnapshot"),
        (CREATE_VOLUME, "PaceCreateVolume"),
        (ATTACH_VOLUME, "PaceAttachVolume"),
    ):
        assert float(parameters[name]["Default"]) == rules.DEFAULT_RATES[action]
        variables = template["Globals"]["Function"]["Environment"]["Variables"]
        assert variables[rules.ENVIRONMENT[action]] == {"Ref": name}
    # CreateSnapshot's bucket is shared with the backup: MaxConcurrency scripts, each one
    # CreateSnapshot per $SnapshotGapSeconds at most (documents/backup.ps1).
    backup = (
        int(parameters["BackupMaxConcurrency"]["Default"]) / backup_retry.settings().gap_seconds
    )
    for action, rate in rules.DEFAULT_RATES.items():
        shared = backup if action == CREATE_SNAPSHOT else 0.0
        assert rate + shared + rules.HEADROOM_PER_SECOND <= rules.REFILL[action]


# --- the ledger's pacer ------------------------------------------------------------------


def test_slots_taken_at_once_are_spaced_by_the_gap_and_a_pacer_left_idle_starts_again_at_now(
    world: Any,
) -> None:
    ledger = _ledger()

    slots = [ledger.take_slot(CREATE_SNAPSHOT, 1000.0, 0.5) for _ in range(4)]
    later = ledger.take_slot(CREATE_SNAPSHOT, 2000.0, 0.5)
    other = ledger.take_slot(CREATE_VOLUME, 1000.0, 0.25)

    assert slots == [1000.0, 1000.5, 1001.0, 1001.5]
    assert later == 2000.0
    assert other == 1000.0  # one pacer per action
    item = boto3.client("dynamodb").get_item(
        TableName=LEDGER_TABLE, Key={"pk": {"S": pace_key(CREATE_SNAPSHOT)}}
    )["Item"]
    assert item["next_at"]["N"] == "2000500"


def test_a_close_slot_is_waited_for_in_the_invocation_and_a_far_one_handed_back(
    world: Any, frozen: Frozen
) -> None:
    ledger, settings = _ledger(), Settings.from_environment({"PACE_CREATE_VOLUME": "0.2"})
    frozen.together = True  # four Lambdas asking at once

    first = pacing.turn(ledger, settings, CREATE_VOLUME, None, 29.0)
    second = pacing.turn(ledger, settings, CREATE_VOLUME, None, 29.0)  # 5 s on: waited here
    third = pacing.turn(ledger, settings, CREATE_VOLUME, None, 29.0)  # 10 s from now
    fourth = pacing.turn(ledger, settings, CREATE_VOLUME, None, 29.0)  # 15 s: handed back

    assert (first, second, third) == (None, None, None)
    assert frozen.slept == [5.0, 10.0]
    assert fourth is not None
    assert fourth.wait_seconds == 15
    # The state machine waits its whole seconds, then runs the step again with the slot:
    # the call is made, no new slot is taken (the next one is still 5 s after this one).
    frozen.together = False
    frozen.advance(fourth.wait_seconds)
    assert pacing.turn(ledger, settings, CREATE_VOLUME, fourth.as_dict(), 29.0) is None
    assert frozen.slept == [5.0, 10.0]
    assert ledger.take_slot(CREATE_VOLUME, clock.now().timestamp(), 5.0) == fourth.at + 5.0


# --- the handlers ------------------------------------------------------------------------


def test_a_create_whose_slot_is_far_off_creates_nothing_and_hands_the_slot_back(
    world: Any, lambda_context: Any, frozen: Frozen
) -> None:
    _ledger().take_slot(CREATE_VOLUME, NOW.timestamp() + 60, 0.25)  # a minute of calls ahead
    volumes_before = len(world.ec2.describe_volumes()["Volumes"])

    handed_back = create_volume.handler(world.event("create_volume"), lambda_context)

    assert handed_back["volume_id"] == ""
    assert handed_back["available"] is None
    assert handed_back["slot"]["wait_seconds"] == 61
    assert len(world.ec2.describe_volumes()["Volumes"]) == volumes_before
    # The state machine waits, then runs the step again with the slot it was handed.
    frozen.advance(61.0)
    event = {**world.event("create_volume"), "volume": handed_back}
    made = create_volume.handler(event, lambda_context)
    assert made["volume_id"].startswith("vol-")
    assert made["slot"] is None


def test_an_attach_whose_slot_is_far_off_attaches_nothing_and_hands_the_slot_back(
    world: Any, lambda_context: Any, frozen: Frozen
) -> None:
    volume_id = world.temporary_volume()
    _ledger().take_slot(ATTACH_VOLUME, NOW.timestamp() + 30, 0.25)

    handed_back = attach_volume.handler(
        world.event("attach_volume", volume=volume_id), lambda_context
    )

    assert handed_back["device"] == ""
    assert handed_back["slot"]["wait_seconds"] == 31
    assert world.volume(volume_id)["Attachments"] == []


def test_a_slot_further_off_than_max_wait_hours_fails_the_step_by_name(
    world: Any, frozen: Frozen
) -> None:
    settings = Settings.from_environment({"MAX_WAIT_HOURS": "1"})
    _ledger().take_slot(CREATE_SNAPSHOT, NOW.timestamp() + 3601, 1.0)  # a pacer gone wrong

    with pytest.raises(SlotTooFar, match="past MaxWaitHours"):
        pacing.turn(_ledger(), settings, CREATE_SNAPSHOT, None, 29.0)
