"""The fast model of a fleet-mode night (bench/des.py) and what the bench asks of it."""

import dataclasses
import json
import math
from typing import Any

import pytest

from bench import allin, des, model, runs, scale, scenarios
from simulator import backup_retry
from vss_restore.logic import pacing


def test_a_turn_lasts_what_the_model_says_the_helper_works() -> None:
    # Take the turn, create (2 s), attach (3 s), inspect, plan, revert, check, detach (3 s):
    # the 216.2 s the full simulator's traces show (bench/README.md's phases).
    assert pytest.approx(216.2) == des.HOLD_SECONDS
    assert model.total(model.helper_operations(model.timing())) < des.HOLD_SECONDS


def test_a_token_bucket_gives_its_burst_then_its_refill() -> None:
    bucket = des.TokenBucket(des.Bucket(100, 20, "test"))

    burst = sum(bucket.take(0.0) for _ in range(150))
    a_second_later = sum(bucket.take(1.0) for _ in range(50))

    assert burst == 100
    assert a_second_later == 20


SMALL = scenarios.fleet_mode(instances=1, max_helpers=1, throttle_every=None)


@pytest.fixture(scope="module")
def small_run() -> runs.Run:
    """The full simulator's fleet-mode night of one instance (C: and D:)."""
    return runs.run(SMALL)


@pytest.fixture(scope="module")
def small_night(small_run: runs.Run) -> dict[str, Any]:
    """Its bill, as bench/allin.py makes it."""
    return allin.bill([allin.summarize(small_run)])


def test_a_fleet_mode_night_bills_every_item_per_verified_snapshot(
    small_night: dict[str, Any],
) -> None:
    result = small_night
    price = allin.helper_price()

    assert result["verified"] == 2
    assert result["failures"] == []
    assert result["helpers_launched"] == 1
    helper = result["helpers_detail"][0]
    # Billed from launch to termination: the modelled boot (240 s), the restores' turns and
    # HelperIdleMinutes (10) counted from the last five-minute look that saw it busy (up to
    # one period before its last turn ended) until the look that terminates it.
    assert helper["billed_seconds"] >= 240 + helper["busy_seconds"] + 600 - 300
    assert helper["terminated_at"] is not None
    assert result["dollars"]["helper_instances"] == pytest.approx(
        helper["billed_seconds"] * price.dollars_per_hour / 3600, rel=1e-4
    )
    assert result["dollars"]["transitions"] == pytest.approx(result["transitions"] * 0.025e-3)
    assert result["consistent_snapshot_gib"] > 0  # the block model's changed data
    assert result["dollars_per_verified"] == pytest.approx(
        sum(result["dollars"].values()) / 2, rel=1e-4
    )
    assert result["helper_idle_share"] == pytest.approx(
        1 - helper["busy_seconds"] / helper["billed_seconds"], abs=1e-4
    )
    assert 0 < result["largest_item_bytes"] < scale.GOAL_ITEM_BYTES
    # The price is the template's, and says it is not verified.
    assert price.dollars_per_hour == 0.188
    assert "UNVERIFIED" in price.source


def test_a_retried_task_counts_as_a_transition(small_run: runs.Run) -> None:
    # One helper place: the second restore' "Prepare the helper" fails with
    # HelperLaunchDelayed while the first one's helper boots, and is retried.
    retried = [
        s
        for e in small_run.executions
        for s in e.entered
        if s.state.endswith(runs.RETRIED_AFTER_ERROR)
    ]

    assert small_run.report.ok, small_run.report.failures
    assert retried
    assert {s.state for s in retried} == {"Prepare the helper" + runs.RETRIED_AFTER_ERROR}
    assert small_run.invocations["PrepareHelperFunction"] == 2 + len(retried)


def test_the_model_matches_the_full_simulator_on_a_small_fleet_mode_night(
    small_night: dict[str, Any],
) -> None:
    full = small_night
    modelled = des.figures(des.run(des.Night(des.arrivals_of(SMALL), max_helpers=1)))

    for key in ("verified", "helper_billed_seconds", "helper_busy_seconds", "transitions"):
        assert modelled[key] == pytest.approx(full[key], rel=0.02), key
    # The schedules' invocations (one each five minutes) run on until each run stops: the
    # simulator's 20 minutes after the last execution, the model's once nothing is left.
    assert modelled["lambda_invocations"] == pytest.approx(full["lambda_invocations"], rel=0.15)


def test_the_check_reports_each_figure_and_the_worst(small_night: dict[str, Any]) -> None:
    full = {**small_night, "api_calls": {"ec2:DescribeVolumes": 1}}

    checked = scale.check(full, allin.FleetModeSpec(instances=1, max_helpers=1))

    assert set(checked["figures"]) == set(scale.CHECKED)
    assert checked["figures"]["ec2_calls"]["within"] is False  # one call is not the model's
    assert checked["within"] is False
    assert checked["worst"] == "ec2_calls"


def test_a_backlog_past_helper_max_hours_drains_to_a_new_helper_and_loses_nothing() -> None:
    # One helper, 60 restores at once: 3.6 h of turns. Past HelperMaxHours the retirement
    # drains the helper (functions/vss_restore/logic/fleet.py, `retirement`): its line goes
    # back to "Prepare the helper", which launches a new one once the old is terminated.
    arrivals = [(0.0, 50.0)] * 60
    short = des.figures(des.run(des.Night(arrivals, max_helpers=1, max_hours=1)))
    long = des.figures(des.run(des.Night(arrivals, max_helpers=1, max_hours=72)))

    assert short["failed"] == 0, short["failed_why"]
    assert short["verified"] == 60
    assert short["helpers_launched"] >= 3  # 3.6 h of turns, a new helper each hour or so
    assert long["failed"] == 0
    assert long["verified"] == 60
    assert long["helpers_launched"] == 1
    assert long["longest_wait_seconds"] > 3 * 3600  # carried over, in line


def test_a_helper_holding_a_turn_past_max_hours_and_the_lease_is_terminated() -> None:
    # The hard bound: a turn that never ends (a stuck restore) cannot keep a helper forever.
    night = des.Night([(0.0, 50.0)], max_helpers=1, max_hours=1)
    model = des.Model(night)
    model.now = 0.0
    helper = des.Helper(0, 0.0, 240.0, 0, holders=1)
    model.helpers.append(helper)
    model.places = 1
    for now, alive in ((3 * 3600.0, True), (3600.0 + des.DRAIN_BOUND_SECONDS + 301, False)):
        model.now = now
        model.retire()
        assert (helper.terminated_at is None) is alive


def test_a_window_that_starts_no_backup_after_its_cutoff_misses_instances() -> None:
    backup = [[30.0, 50.0]] * 400
    slow = des.run(
        des.Night([], backup=backup, backup_concurrency=2, backup_cutoff_seconds=600, limits=True)
    )
    # Each backup's CreateSnapshot paced (one per 40 s): 85 s an instance; 80 at once start
    # the 400 in 425 s.
    fast = des.run(des.Night([], backup=backup, backup_concurrency=80, backup_cutoff_seconds=600))

    assert slow.backups_missed > 0
    assert fast.backups_missed == 0
    assert len(fast.restores) + 2 * fast.backups_missed + fast.backup_snapshots_failed == 800


def test_looks_beyond_the_describe_rate_are_throttled_and_counted() -> None:
    # 1,200 restores at once on 300 helpers of 4 turns, each wait looking alone (no shared
    # look): their volumes' looks come together, beyond DescribeVolumes' 100 burst and 20 a
    # second.
    night = des.Night(
        [(0.0, 50.0)] * 1200, max_helpers=300, concurrency=4, boot_seconds=60, shared_look=False
    )
    f = des.figures(des.run(night))

    assert f["throttled"].get("ec2:DescribeVolumes", 0) > 0
    assert f["peak_describe_volumes_per_second"] > scale.GOAL_DESCRIBE_VOLUMES_PER_SECOND
    unlimited = des.figures(
        des.run(des.Night(night.arrivals, 100, 4, 60, limits=False, shared_look=False))
    )
    assert unlimited["throttled"] == {}
    assert unlimited["verified"] == len(night.arrivals)


def test_the_backup_script_retries_the_snapshots_the_sdk_retries_lose() -> None:
    # 800 instances, 300 at a time: 1,600 CreateSnapshot calls against a bucket of 100 and
    # 5 a second. The SDK's 5 attempts alone lose snapshots; New-SnapshotWithRetry's
    # backoff (documents/backup.ps1's settings) takes every one within its budget.
    night = des.Night(
        [],
        max_helpers=100,
        concurrency=4,
        backup=[[30.0, 50.0]] * 800,
        backup_concurrency=300,
        backup_cutoff_seconds=600,
    )
    without = des.figures(des.run(dataclasses.replace(night, backup_retries=False)))
    with_retries = des.figures(des.run(night))

    assert without["backup_snapshots_failed"] > 0
    assert without["backup_retries"] == 0
    assert with_retries["backup_snapshots_failed"] == 0
    assert with_retries["backup_retries"] > 0
    assert with_retries["snapshots"] == 1600  # each taken snapshot's event starts a restore


def test_a_backup_throttled_past_its_budget_gives_up_when_the_budget_ends() -> None:
    # A bucket that never gives a token: each volume's retries stop once a wait would end
    # past the budget, which runs from the moment the snapshot script begins.
    retry = backup_retry.settings()
    m = des.Model(des.Night([], backup=[[30.0, 50.0]] * 3, backup_concurrency=3))
    m.buckets["ec2:CreateSnapshot"] = des.TokenBucket(des.Bucket(0, 1e-9, "starved"))
    m.run()
    f = des.figures(m)

    assert f["backup_snapshots_failed"] == 6
    assert f["snapshots"] == 0
    # Every retry of the script's makes the SDK's attempts again.
    assert m.calls["ec2:CreateSnapshot"] == des.BOTOCORE_ATTEMPTS * (f["backup_retries"] + 6)
    # C: used the budget; D: came after it, each SDK try taking at most 2 + 4 + 8 + 16 s.
    sdk = sum(2**n for n in range(1, des.BOTOCORE_ATTEMPTS))
    began = des.BACKUP_BEFORE_SNAPSHOTS
    assert f["backup_ended_at"] <= began + retry.budget_seconds + 2 * sdk + retry.cap_seconds + 5
    assert f["backup_ended_at"] >= began + retry.budget_seconds - retry.cap_seconds


def test_the_default_window_and_concurrency_start_every_instance_that_10_leaves_out() -> None:
    # A fifth of the bench's night (2,000 instances, 5,000 snapshots) in a fifth of the
    # default window's 3 h of starts: with each backup's CreateSnapshot paced (one per 40 s:
    # 105 s an instance on average), the old default of 30 at a time leaves more than a
    # quarter of the fleet out; at the template's default all start, every snapshot is
    # taken, and the last backup ends within a fifth of the window.
    assert (scale.WINDOW_HOURS, scale.DEFAULT_CONCURRENCY) == (4, 100)
    starts = (scale.WINDOW_HOURS - scale.CUTOFF_HOURS) * 3600 / 5

    def night(concurrency: int) -> dict[str, Any]:
        return des.figures(
            des.run(
                des.Night(
                    [],
                    max_helpers=100,
                    concurrency=4,
                    backup=scale.fleet_backup(2000),
                    backup_concurrency=concurrency,
                    backup_cutoff_seconds=starts,
                )
            )
        )

    old, default = night(30), night(scale.DEFAULT_CONCURRENCY)

    assert old["backup_instances_missed"] > 500
    assert default["backup_instances_missed"] == 0
    assert default["backup_snapshots_failed"] == 0
    assert default["snapshots"] == 5000
    assert default["backup_ended_at"] <= scale.WINDOW_HOURS * 3600 / 5


def test_a_restore_whose_volumes_are_on_time_looks_once_per_wait() -> None:
    # One restore, no limits: the source volume's zone (its helper's launch, the subnets in
    # two zones), the create's wait, the attach's wait (no look before it: the helper's
    # mappings), our volume and the detach's wait, the delete's check.
    f = des.figures(des.run(des.Night([(0.0, 50.0)], max_helpers=1, limits=False)))

    assert f["verified"] == 1
    assert f["api_calls"]["ec2:DescribeVolumes"] == 6


def test_a_slow_volume_is_looked_at_on_the_handlers_schedule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An attach of 20 s: looks at 3 s, then about 1, 2, 4 and 8 s later, inside the
    # invocation (at about 3, 4, 6, 10 and 18 s), then one more from the loop.
    monkeypatch.setitem(des.T, "attach_seconds", 20.0)
    night = des.Night([(0.0, 50.0)], max_helpers=1, limits=False)
    alone = des.figures(des.run(dataclasses.replace(night, shared_look=False)))
    shared = des.figures(des.run(night))

    assert alone["api_calls"]["ec2:DescribeVolumes"] == 6 + 5
    # Shared, the look under a second after the first (its pause jittered below 1 s) reads
    # the first one's answer from the ledger instead of calling EC2.
    assert shared["api_calls"]["ec2:DescribeVolumes"] == 6 + 4


class Spell(des.TokenBucket):
    """A bucket that refuses every call for `seconds` from the first one, then refills."""

    def __init__(self, spec: des.Bucket, seconds: float) -> None:
        super().__init__(spec)
        self.seconds = seconds
        self.began: float | None = None

    def take(self, now: float) -> bool:
        if self.began is None:
            self.began = now
        return now >= self.began + self.seconds and super().take(now)


SDK_LONGEST = sum(2**n for n in range(1, des.BOTOCORE_ATTEMPTS))  # botocore's 2 + 4 + 8 + 16 s


def _one_restore_throttled(action: str, seconds: float) -> des.Model:
    m = des.Model(des.Night([(0.0, 50.0)], max_helpers=1))
    m.buckets[action] = Spell(des.BUCKETS[action], seconds)
    m.run()
    return m


def _longest(retry: des.Retrier) -> float:
    """The most a call's retries can take: each task attempt's SDK backoff, and the task's."""
    return retry.longest_seconds() + (retry.attempts + 1) * SDK_LONGEST


# The AwsThrottled Retry the steps had before #13's fleet met SendCommand's bucket.
OLD_RETRY = des.Retrier(3.0, 2.0, 60.0, 5, True)


@pytest.mark.parametrize(
    ("action", "retry"),
    [
        ("ssm:SendCommand", des.COMMAND_RETRY["Inspect the disk"]),
        ("ec2:CreateSnapshot", des.SNAPSHOT_RETRY),
    ],
)
def test_a_long_throttled_spell_on_a_step_that_holds_nothing_costly_fails_no_restore(
    action: str, retry: des.Retrier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Refused for 400 s: longer than the old Retry could ride out, well within the step's.
    spell = 400.0
    assert _longest(OLD_RETRY) < spell < retry.longest_seconds()

    m = _one_restore_throttled(action, spell)
    f = des.figures(m)

    assert f["verified"] == 1, f["failed_why"]
    assert f["throttled"][action] > des.BOTOCORE_ATTEMPTS  # the task's Retry did ride it out
    # The same spell with the old Retry fails the restore: the spell is one that matters.
    monkeypatch.setattr(des, "SNAPSHOT_RETRY", OLD_RETRY)
    monkeypatch.setitem(des.COMMAND_RETRY, "Inspect the disk", OLD_RETRY)
    old = des.figures(_one_restore_throttled(action, spell))
    assert old["failed_why"] == {f"{action} throttled past every retry": 1}


@pytest.mark.parametrize(
    ("action", "retry"),
    [
        ("ssm:SendCommand", des.COMMAND_RETRY["Inspect the disk"]),
        ("ec2:CreateSnapshot", des.SNAPSHOT_RETRY),
    ],
)
def test_a_throttled_spell_past_the_steps_retries_fails_the_restore(
    action: str, retry: des.Retrier
) -> None:
    m = _one_restore_throttled(action, _longest(retry) + 1)
    f = des.figures(m)

    assert f["verified"] == 0
    assert f["failed_why"] == {f"{action} throttled past every retry": 1}
    # Every task attempt made botocore's attempts: the first and MaxAttempts retries.
    assert m.calls[action] == des.BOTOCORE_ATTEMPTS * (retry.attempts + 1)
    assert f["not_ended"] == 0
    assert m.helpers[0].holders == 0  # the failed restore gave its turn back


def test_the_models_retries_are_the_state_machines() -> None:
    # Read here without des.py's reader: each step's AwsThrottled (and HelperLaunchDelayed)
    # rule, as the model applies it to that step's calls.
    states = json.loads(des.ASL.read_text())["States"]
    restore = states["Restore each snapshot"]["ItemProcessor"]["States"]

    def rule(state: str, error: str = "AwsThrottled") -> des.Retrier:
        (found,) = [r for r in restore[state]["Retry"] if error in r["ErrorEquals"]]
        assert found["JitterStrategy"] == "FULL"
        return des.Retrier(
            found["IntervalSeconds"],
            found["BackoffRate"],
            found["MaxDelaySeconds"],
            found["MaxAttempts"],
            True,
        )

    assert rule("Prepare the helper", "HelperLaunchDelayed") == des.LAUNCH_RETRY
    assert rule("Snapshot the consistent volume") == des.SNAPSHOT_RETRY
    assert {s for s, _, _ in des.COMMANDS} == {
        "Inspect the disk",
        "Revert the shadow copies",
        "Check the disk",
    }
    for state, retry in des.COMMAND_RETRY.items():
        assert retry == rule(state), state
    # Every other step's calls are retried as THROTTLE_RETRY: so is every other step's rule.
    longer = {des.SNAPSHOT_STATE, *des.COMMAND_RETRY}
    for state, body in {**states, **restore}.items():
        if body["Type"] == "Task" and state not in longer:
            assert des.retrier(state) == des.THROTTLE_RETRY, state
    assert des.THROTTLE_RETRY == OLD_RETRY


def test_the_shared_look_makes_one_describe_volumes_a_second_for_every_wait() -> None:
    # 400 restores two a second on 100 helpers of 4 turns: their waits and "ours?" checks
    # read the one shared look of their second (looks.py) instead of each calling EC2.
    night = des.Night(
        [(n * 0.5, 50.0) for n in range(400)],
        max_helpers=100,
        concurrency=4,
        boot_seconds=60,
        limits=False,
    )
    shared = des.run(night)
    alone = des.run(dataclasses.replace(night, shared_look=False))

    assert len([r for r in shared.restores if r.verdict == "verified"]) == 400
    # Five looks a restore at least (three waits, two checks), each its own call when alone.
    assert alone.own_looks >= 5 * 400
    assert alone.shared_looks == 0
    # Shared: at most one look a second begins a DescribeVolumes (one page: under 500
    # volumes), none is made alone (every volume is older than the answer its wait reads).
    assert shared.own_looks == 0
    assert max(shared.per_second["ec2:DescribeVolumes"].values()) <= 2  # a look and a launch's
    assert shared.shared_looks <= shared.now
    launches = len(shared.helpers)  # each launch looks up its source volume's zone
    assert shared.calls["ec2:DescribeVolumes"] == shared.shared_looks + launches
    assert alone.calls["ec2:DescribeVolumes"] == alone.own_looks + launches


def test_the_models_pacer_spreads_our_calls_at_the_paced_rates_and_none_is_throttled() -> None:
    # 400 restores at once on 100 helpers of 4 turns: they reach CreateVolume, AttachVolume
    # and CreateSnapshot together. Paced (the template's rates, logic/pacing.py), no 10 s see
    # more calls of one than its rate allows (a slot waited for by the state machine is
    # called up to 1.2 s late: its Wait's whole seconds and the Lambda), none is throttled
    # and some wait in the state machine; unpaced, the buckets refuse calls.
    arrivals = [(0.0, 30.0)] * 400
    paced = des.run(des.Night(arrivals, max_helpers=100, concurrency=4))
    unpaced = des.run(des.Night(arrivals, max_helpers=100, concurrency=4, paced_rates=None))

    for action, rate in pacing.DEFAULT_RATES.items():
        seconds = paced.per_second[action]
        windows = [sum(seconds[t + k] for k in range(10)) for t in range(max(seconds) + 1)]
        assert max(windows) <= math.ceil(rate * (10 + 1.2)), action
        assert paced.throttled[action] == 0, action
    # The creates and the snapshots queue (the attaches follow the creates' spread).
    assert paced.paced_waits["ec2:CreateVolume"] > 0
    assert paced.paced_waits["ec2:CreateSnapshot"] > 0
    assert sum(unpaced.throttled[a] for a in pacing.PACED) > 0
    assert all(r.verdict == "verified" for r in paced.restores)
