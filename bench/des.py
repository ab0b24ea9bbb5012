"""A fast discrete-event model of the fleet-mode night, for fleets the full simulator cannot
run in minutes (10,000 instances, 25,000 snapshots), with the account's API limits.

It replays what the workflow does (statemachine/restore.asl.json, functions/vss_restore/
fleet.py, turns.py) at the level that decides time and money: each restore's helper choice
(a free turn on an Online helper, else a launch while MaxHelpers allows, else the least busy
helper's line, else HelperLaunchDelayed retried with Step Functions' full jitter), the first
come first served line, the helper's boot and the five-minute retirement of idle helpers and
of those past HelperMaxHours (drained: their line sent elsewhere, then terminated), each AWS
call at its moment against a token bucket per API, and every transition and Lambda
invocation that Step Functions and Lambda bill. The latencies are bench/model.py's;
what a restore does between two of them (how many calls, how many transitions) is read off
the full simulator's traces (RESTORE below, checked by `compare` at 300 snapshots).

Not modelled: the simulator's Windows (the revert's work is its modelled duration), the
ledger's contents (one item per waiter by design: their size is measured in the full
simulator), faults other than throttling.
"""

import heapq
import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import model
from simulator import backup_retry
from vss_restore.logic import looks as shared_looks
from vss_restore.logic import pacing, polling
from vss_restore.turns import TURN_LEASE_SECONDS

T = model.LATENCIES
LAMBDA = T["lambda_seconds"]

# --- the workflow's own constants (each read from where it lives) --------------------------
ASL = Path(__file__).resolve().parents[1] / "statemachine" / "restore.asl.json"


@dataclass(frozen=True)
class Retrier:
    """A Task's Retry for one error, as Step Functions runs it (Developer Guide, "Handling
    errors in Step Functions workflows", Retry fields): retry n (from 0) waits IntervalSeconds
    * BackoffRate^n, at most MaxDelaySeconds; JitterStrategy FULL makes it a random time
    between 0 and that; MaxAttempts retries, then the error goes to the Catch."""

    interval: float
    rate: float
    cap: float
    attempts: int
    full_jitter: bool

    def ceiling(self, retry: int) -> float:
        return min(self.interval * self.rate**retry, self.cap)

    def delay(self, retry: int, rng: random.Random) -> float:
        ceiling = self.ceiling(retry)
        return rng.uniform(0, ceiling) if self.full_jitter else ceiling

    def longest_seconds(self) -> float:
        """The most its retries can wait in all (each at its ceiling)."""
        return sum(self.ceiling(n) for n in range(self.attempts))


def asl_states(asl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state of the definition by name, the Map's own included."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in asl["States"].items():
        found[name] = state
        for inner in (state.get("ItemProcessor"), state.get("Iterator")):
            if inner:
                found.update(asl_states(inner))
    return found


def retrier(state: str, error: str = "AwsThrottled") -> Retrier:
    """The Retry that `state` applies to `error`, read from statemachine/restore.asl.json
    (the absent fields at Step Functions' defaults: 1 s, 3 attempts, rate 2, no cap, NONE)."""
    states = asl_states(json.loads(ASL.read_text(encoding="utf-8")))
    for rule in states[state].get("Retry", []):
        if error in rule["ErrorEquals"] or rule["ErrorEquals"] == ["States.ALL"]:
            return Retrier(
                float(rule.get("IntervalSeconds", 1)),
                float(rule.get("BackoffRate", 2.0)),
                float(rule.get("MaxDelaySeconds", math.inf)),
                int(rule.get("MaxAttempts", 3)),
                rule.get("JitterStrategy", "NONE") == "FULL",
            )
    return Retrier(0.0, 1.0, 0.0, 0, False)  # not retried: straight to the Catch


# "Prepare the helper": HelperLaunchDelayed (20 times, 60 s growing by 1.5 to 900 s).
LAUNCH_RETRY = retrier("Prepare the helper", "HelperLaunchDelayed")
# AwsThrottled (a handler's throttled call after botocore's own retries). Each step's own:
# the steps that hold nothing costly wait longer (the disk tool's commands: only the helper's
# turn waits; the consistent snapshot after the detach: only the temporary volume), the
# others as "Create the volume" (3 s growing by 2 to 60 s, 5 retries).
THROTTLE_RETRY = retrier("Create the volume")
SNAPSHOT_STATE = "Snapshot the consistent volume"
SNAPSHOT_RETRY = retrier(SNAPSHOT_STATE)
# botocore's legacy retry mode: 5 attempts in all, the n-th retry after rand(0,1) * 2**n s
# (the backup's AWS.Tools.EC2 is taken to retry alike: backup_retry.SDK_ATTEMPTS).
BOTOCORE_ATTEMPTS = 5
# "Wait for the helper to boot": 30 s between two looks.
BOOT_POLL_SECONDS = 30.0
# "Take a turn on the helper" times out after 900 s and is retried (keeping its place).
TURN_TIMEOUT_SECONDS = 900.0
# RetireHelpersFunction: rate(5 minutes); the first tick 0.2 s after the stack's start in the
# simulator (where the bench measures it).
RETIRE_PERIOD = 300.0
RETIRE_PHASE = 0.2
# A helper past HelperMaxHours drains (functions/vss_restore/logic/fleet.py, `retirement`):
# no new work, its line sent elsewhere; past HelperMaxHours and the turn lease, terminated
# whatever it holds.
DRAIN_BOUND_SECONDS = float(TURN_LEASE_SECONDS)
# FindUnverifiedInstancesFunction (the reconciliation's look): hourly.
HOURLY = 3600.0

# --- one restore, as the full simulator's traces show it (bench/runs.py, fleet mode) --------
# Steps before "Prepare the helper": read, resolve, claim (one Lambda each).
BEFORE_PREPARE = 3 * LAMBDA
# A disk tool command as a task: the Lambda that sends it, the agent's pick-up, its run, the
# status-change event and the callback that answers the task (bench/README.md's phases).
COMMAND = 2 * LAMBDA + T["command_delivery_seconds"] + T["event_delivery_seconds"]
# From "Take a turn on the helper" (or the hand-over) to "Give back the helper": take the
# turn, create (its wait inside), attach (same), inspect, plan, revert, check, detach (same).
HOLD_SECONDS = (
    LAMBDA
    + (LAMBDA + T["volume_available_seconds"])
    + (LAMBDA + T["attach_seconds"])
    + 3 * COMMAND
    + T["inspect_seconds"]
    + T["revert_seconds"]
    + T["check_seconds"]
    + LAMBDA
    + (LAMBDA + T["detach_seconds"])
)
# CreateVolume's call, at the end of its Lambda's modelled 0.2 s.
CREATE_AFTER = 2 * LAMBDA
# After "Give back the helper": its Lambda, the snapshot task (its Lambda, the snapshot, its
# event and the execution that answers it), keep the volume?, delete, record, report.
AFTER_GIVE_BACK = 7 * LAMBDA + T["snapshot_seconds"] + T["event_delivery_seconds"]
VOLUME_DELETED_AFTER_GIVE_BACK = AFTER_GIVE_BACK - 2 * LAMBDA
SKIP_STARTS_AFTER_GIVE_BACK = 2 * LAMBDA + T["snapshot_seconds"] + T["event_delivery_seconds"]

# Transitions and Lambda invocations of a restore that neither waited nor launched; each
# retry, each poll round and each turn timeout adds its own. The consistent snapshot's own
# event starts a second execution that skips it.
RESTORE_TRANSITIONS = 28
RESTORE_INVOCATIONS = 20
# Of which after the turn: create ... report (23 states: 19, and since the pacing the three
# "Our slot ...?" Choices and "No consistent snapshot yet"), and their Lambdas (create, attach,
# the disk tool three times and its three callbacks, plan, detach, give back, snapshot,
# delete, record, finish).
AFTER_TURN_TRANSITIONS = 23
AFTER_TURN_INVOCATIONS = 15
SKIP_TRANSITIONS = 6
SKIP_INVOCATIONS = 3
POLL_TRANSITIONS = 3  # Wait, "Is the helper online?", "Is the helper up?"
# Lambda seconds beyond the modelled 0.2 s per invocation: CreateVolume, AttachVolume and
# DetachVolume wait for their volume inside the invocation (bench/README.md).
IN_HANDLER_WAITS = T["volume_available_seconds"] + T["attach_seconds"] + T["detach_seconds"]

# The calls each step makes, by API ("service:Action"), read off the full simulator's
# authorizer (every call judged): (offset after the step's start, action).
Calls = list[tuple[float, str]]
PREPARE_CALLS: Calls = [
    (0.0, "ssm:GetParameter"),
    (0.0, "ec2:DescribeImages"),
    (0.0, "ec2:DescribeInstanceTypes"),
    (0.1, "ec2:DescribeInstances"),
]
PREPARE_AGENTS: Calls = [(0.1, "ssm:DescribeInstanceInformation")]
# The source volume's zone is looked up only when it decides between zones (fleet.SourceZone):
# at a launch (the stack's subnets span two zones); a reused helper is chosen with no look, as
# every helper runs in the sources' zone (it comes first at launch and has the capacity).
LAUNCH_CALLS: Calls = [
    (0.15, "ec2:DescribeSubnets"),
    (0.15, "ec2:DescribeVolumes"),
    (0.2, "ec2:RunInstances"),
]
POLL_CALLS: Calls = [(0.0, "ec2:DescribeInstances"), (0.1, "ssm:DescribeInstanceInformation")]
RESOLVE_CALLS: Calls = [(0.2, "ec2:DescribeSnapshots"), (0.3, "ec2:DescribeSnapshots")]
SKIP_CALLS: Calls = [(0.2, "ec2:DescribeSnapshots")]
# In the turn: each wait for a volume looks on the handlers' own schedule
# (functions/vss_restore/logic/polling.py: the first look when the operation usually ends,
# then 1 s doubling, jittered by the volume), one look after the other, until the
# modelled latency has passed since the call that started it. Before its call, DetachVolume
# reads its volume (ours?); AttachVolume reads the helper's mappings (DescribeInstances) only.
# Each look, and the "ours?" checks before DetachVolume and DeleteVolume, is the shared look's
# (looks.py, Model.look_at_volume): one DescribeVolumes by our tag a second across the stack,
# 500 volumes a page, its answer read by every other look of that second and the next two.
CREATE_LOOKS_BEFORE, ATTACH_LOOKS_BEFORE, DETACH_LOOKS_BEFORE = 0, 0, 1
# The function's Timeout (template.yaml Globals), which bounds the wait inside the invocation.
FUNCTION_TIMEOUT_SECONDS = 30.0
LOOP_ROUND = 3  # transitions of a round of the state machine's loop: the Wait, the look, the Choice
# A disk tool command from its SendCommand to the end of its task (the agent's pick-up, the
# run, the status-change event, the callback), and the Lambda steps between two commands.
COMMAND_AFTER_CALL = T["command_delivery_seconds"] + T["event_delivery_seconds"] + LAMBDA
# Each with its task's state (its AwsThrottled Retry, for a throttled SendCommand).
COMMANDS = (
    ("Inspect the disk", T["inspect_seconds"], LAMBDA),  # then "Plan the revert"
    ("Revert the shadow copies", T["revert_seconds"], 0.0),
    ("Check the disk", T["check_seconds"], 0.0),
)
COMMAND_RETRY = {state: retrier(state) for state, _, _ in COMMANDS}
# GetCommandInvocation: once by the Lambda that sends the command, twice by the callback.
COMMAND_LOOKS: Calls = [(0.2, "ssm:GetCommandInvocation")]
CALLBACK_LOOKS = 2
# After "Give back the helper": the snapshot task's Lambda looks for an earlier snapshot of
# this execution (DescribeSnapshots) and calls CreateSnapshot, throttled or not as its bucket
# says: past botocore's and the task's retries the restore fails ("Clean up after the
# failure"). What follows counts from CreateSnapshot's success.
SNAPSHOT_CALL_AFTER = 0.4
SNAPSHOT_LOOKS: Calls = [(SNAPSHOT_CALL_AFTER, "ec2:DescribeSnapshots")]
AFTER_SNAPSHOT_CALLS: Calls = [
    (181.2, "ec2:DescribeSnapshots"),
    (181.4, "ec2:DeleteVolume"),
    (181.6, "ec2:CreateTags"),
]
# DeleteVolume's "ours?" look, a shared look's answer or its own (Model.look_at_volume).
DELETE_LOOK_AFTER = 181.4
RETIRE_CALLS: Calls = [(0.0, "ec2:DescribeInstances")]


# The backup, per instance (documents/backup.ps1): MODELLED, no published figure. Before its
# snapshots: the command's delivery, PowerShell with AWS.Tools.EC2 (assumed 5 s; FIELD-NOTES
# §7: the small module, not the monolithic one), DiskShadow's shadow copies (the simulator's
# shadow_copy_seconds, 10 s). After: `end backup` and `delete shadows` (assumed 5 s).
BACKUP_BEFORE_SNAPSHOTS = T["command_delivery_seconds"] + 5.0 + 10.0
BACKUP_AFTER_SNAPSHOTS = 5.0
# Its CreateSnapshot refused past the SDK's own attempts (backup_retry.SDK_ATTEMPTS, taken as
# botocore's legacy backoff) is retried as New-SnapshotWithRetry does, with the script's own
# settings (simulator/backup_retry.py reads them from documents/backup.ps1), the budget
# counted from the moment its snapshot script begins.
BACKUP_RETRY = backup_retry.settings()


# --- the account's limits ---------------------------------------------------------------
@dataclass(frozen=True)
class Bucket:
    size: float
    refill: float  # tokens per second
    source: str


# EC2: "Request throttling for the Amazon EC2 API" (EC2 Developer Guide,
# docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html): a token bucket per API
# and account and Region, of the API's category. The page's own example: DescribeHosts,
# non-mutating, 100 tokens refilled at 20 a second. The other figures are FIELD-NOTES §7's
# reading of the same page's tables (not re-read here: no AWS page is reachable); a call
# with VolumeIds is taken as filtered.
EC2_DOC = "EC2 Developer Guide, Request throttling for the Amazon EC2 API"
DESCRIBE = Bucket(100, 20, f"{EC2_DOC}: non-mutating (DescribeHosts' example: 100, 20/s)")
EC2_BUCKETS: dict[str, Bucket] = {
    # The paced APIs' figures are logic/pacing.py's (one source: what the pacer stays under).
    **{
        action: Bucket(
            pacing.BUCKET_SIZE[action], pacing.REFILL[action], f"{EC2_DOC} (FIELD-NOTES §7)"
        )
        for action in pacing.PACED
    },
    "ec2:DeleteVolume": Bucket(100, 5, f"{EC2_DOC} (FIELD-NOTES §7)"),
    "ec2:CreateTags": Bucket(100, 10, f"{EC2_DOC} (FIELD-NOTES §7)"),
    "ec2:DetachVolume": Bucket(50, 5, f"{EC2_DOC}: other mutating (FIELD-NOTES §7)"),
    "ec2:RunInstances": Bucket(50, 5, f"{EC2_DOC}: other mutating (FIELD-NOTES §7; assumed)"),
    "ec2:TerminateInstances": Bucket(50, 5, f"{EC2_DOC}: other mutating (assumed)"),
}
# Step Functions (Developer Guide, "Step Functions service quotas", Standard, us-east-1 and
# the other large Regions; FIELD-NOTES §7): StartExecution 1,300 burst, 300/s; state
# transitions 5,000 burst, 1,500/s.
START_EXECUTION = Bucket(1300, 300, "Step Functions quotas: StartExecution (FIELD-NOTES §7)")
TRANSITIONS = Bucket(5000, 1500, "Step Functions quotas: StateTransition (FIELD-NOTES §7)")
# Lambda: 1,000 concurrent executions per account and Region by default (Lambda Developer
# Guide, "Lambda quotas").
LAMBDA_CONCURRENCY = 1000
# DynamoDB: a partition takes at most 1,000 write units a second (DynamoDB Developer Guide,
# "Partitions and data distribution"); the ledger's hottest item is a helper's turns item.
PARTITION_WCU = 1000
# SSM SendCommand: no bucket figure found in the sources at hand; assumed as EC2's other
# mutating calls (50, 5/s) and reported with its peak rate so it can be checked.
SSM_BUCKETS: dict[str, Bucket] = {
    "ssm:SendCommand": Bucket(50, 5, "assumed (no published figure found here)"),
}
BUCKETS = {**EC2_BUCKETS, **SSM_BUCKETS}


class TokenBucket:
    def __init__(self, spec: Bucket) -> None:
        self.spec = spec
        self.tokens = spec.size
        self.at = 0.0

    def take(self, now: float) -> bool:
        if now > self.at:
            self.tokens = min(self.spec.size, self.tokens + (now - self.at) * self.spec.refill)
            self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# --- the model ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Night:
    """Snapshot events (seconds after the first, each with its volume's GiB) and the stack."""

    arrivals: list[tuple[float, float]]
    max_helpers: int = 5
    concurrency: int = 1
    boot_seconds: float = 240.0  # simulator Timing.helper_boot_seconds (modelled)
    idle_minutes: float = 10.0
    max_hours: float = 12.0
    max_wait_hours: float = 36.0
    limits: bool = True  # the token buckets; off: every call succeeds
    # Our paced calls a second (logic/pacing.py; template PaceCreate*): None, not paced.
    paced_rates: dict[str, float] | None = field(default_factory=lambda: dict(pacing.DEFAULT_RATES))
    seed: int = 1
    # The nightly backup itself (instead of `arrivals`): each instance's volumes (GiB), run
    # by the maintenance window MaxConcurrency at a time, no new one after the cutoff.
    backup: list[list[float]] = field(default_factory=list)
    backup_concurrency: int = 30
    # No backup starts after this: BackupWindowHours (4 by default) less the Cutoff (1 h).
    backup_cutoff_seconds: float = 3 * 3600.0
    backup_retries: bool = True  # documents/backup.ps1's New-SnapshotWithRetry
    # With `arrivals`: the backup's CreateSnapshot of each, taken from the shared bucket when
    # the snapshot began (snapshot_seconds and the event's delivery before its event).
    arrivals_take_backup_tokens: bool = False
    # What a snapshot's consistent copy keeps, and the ledger's requests, per restore: read
    # off the full simulator (block model, authorizer), not modelled here.
    consistent_gib_per_restore: float = 0.0
    dynamodb_writes_per_restore: float = 0.0
    dynamodb_reads_per_restore: float = 0.0
    # The shared look at our temporary volumes (looks.py); off: each look its own
    # DescribeVolumes, as before issue #13's shared look.
    shared_look: bool = True


@dataclass
class Helper:
    number: int
    launched_at: float
    online_at: float
    used: int  # when a restore last took or waited for it (whole seconds, as the ledger)
    holders: int = 0
    freed_at: int = 0  # when a turn was last given back (the ledger's freed_at)
    line: list["Restore"] = field(default_factory=list)
    terminated_at: float | None = None
    busy: list[tuple[float, float]] = field(default_factory=list)

    def load(self) -> int:
        return self.holders + len(self.line)


@dataclass
class Restore:
    number: int
    arrived: float
    gib: float
    helper: Helper | None = None
    launch_attempts: int = 0
    queued_at: float | None = None
    verdict: str = ""
    why: str = ""
    ended_at: float | None = None


class Model:
    def __init__(self, night: Night) -> None:
        self.night = night
        self.rng = random.Random(night.seed)
        self.queue: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = 0
        self.now = 0.0
        self.helpers: list[Helper] = []
        self.places = 0
        self.restores: list[Restore] = []
        self.buckets = {a: TokenBucket(b) for a, b in BUCKETS.items()}
        self.describe: dict[str, TokenBucket] = {}
        self.pacers: dict[str, float | None] = {}  # action -> its next free slot (the ledger's)
        self.paced_waits: Counter[str] = Counter()  # slots handed to the state machine's Wait
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.per_second: dict[str, Counter[int]] = defaultdict(Counter)
        self.transitions = 0
        self.transitions_per_second: Counter[int] = Counter()
        self.invocations = 0
        self.lambda_seconds = 0.0
        self.lambda_running: Counter[int] = Counter()  # invocation-seconds per second
        self.starts_per_second: Counter[int] = Counter()
        self.turn_writes_per_second: Counter[tuple[int, int]] = Counter()
        self.volume_gib_seconds = 0.0
        self.waits: list[float] = []  # each restore's time in a helper's line
        # The shared look (looks.py): when the last look started, when the last complete one
        # started (its answer), and the temporary volumes that exist (for its pages).
        self.looked_at = -math.inf
        self.answered_at = -math.inf
        self.volumes_alive = 0
        self.shared_looks = 0
        self.own_looks = 0
        self.executions = 0
        self.last_event = 0.0

    # -- the event loop --------------------------------------------------------------------
    def at(self, when: float, action: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (when, self.seq, action))

    def run(self) -> None:
        began = T["snapshot_seconds"] + T["event_delivery_seconds"]
        for number, (t, gib) in enumerate(self.night.arrivals):
            r = Restore(number, t, gib)
            self.restores.append(r)
            self.at(t, lambda r=r: self.start(r))
            if self.night.arrivals_take_backup_tokens:
                self.at(
                    max(t - began, 0.0),
                    lambda: self.call("ec2:CreateSnapshot", lambda: None, None, retry=None),
                )
        self.backups_waiting = list(enumerate(self.night.backup))
        self.backups_waiting.reverse()
        self.backup_slots = self.night.backup_concurrency
        self.backup_ends: list[float] = []
        self.backups_missed = 0  # instances the window never started (past its cutoff)
        self.backup_snapshots_failed = 0  # CreateSnapshot throttled past every retry
        self.backup_retries = 0  # the script's retries (New-SnapshotWithRetry)
        for _ in range(min(self.backup_slots, len(self.backups_waiting))):
            self.at(0.0, self.next_backup)
        self.at(RETIRE_PHASE, self.retire)
        self.at(HOURLY, self.hourly)
        while self.queue:
            self.now, _, action = heapq.heappop(self.queue)
            action()

    # -- the nightly backup (documents/backup.ps1 through the maintenance window) ----------
    def next_backup(self) -> None:
        if not self.backups_waiting:
            return
        if self.now > self.night.backup_cutoff_seconds:
            self.backups_missed += len(self.backups_waiting)
            self.backups_waiting.clear()
            return
        _, volumes = self.backups_waiting.pop()
        # The agent starts the script, PowerShell and AWS.Tools.EC2 load, DiskShadow makes
        # the shadow copies (the simulator's shadow_copy_seconds), then one CreateSnapshot
        # per volume, one after the other, then `end backup` and `delete shadows`.
        began = self.now
        at = self.now + BACKUP_BEFORE_SNAPSHOTS
        deadline = at + BACKUP_RETRY.budget_seconds
        self.at(at, lambda: self.backup_snapshot(volumes, 0, deadline, began))

    def backup_snapshot(
        self, volumes: list[float], k: int, deadline: float, began: float, attempt: int = 0
    ) -> None:
        if k == len(volumes):
            self.backup_ends.append(self.now + BACKUP_AFTER_SNAPSHOTS)
            self.at(self.now + BACKUP_AFTER_SNAPSHOTS, self.next_backup)
            return
        paced_at = BACKUP_RETRY.paced_at(began, k)  # the script's paced start
        if self.now < paced_at:
            self.at(paced_at, lambda: self.backup_snapshot(volumes, k, deadline, began, attempt))
            return
        gib = volumes[k]

        def taken() -> None:
            event = self.now + T["snapshot_seconds"] + T["event_delivery_seconds"]
            r = Restore(len(self.restores), event, gib)
            self.restores.append(r)
            self.at(event, lambda: self.start(r))
            self.backup_snapshot(volumes, k + 1, deadline, began)

        def refused() -> None:
            wait = BACKUP_RETRY.wait(attempt, self.rng)
            if self.night.backup_retries and BACKUP_RETRY.retries(
                "RequestLimitExceeded", wait, deadline - self.now
            ):
                self.backup_retries += 1
                self.at(
                    self.now + wait,
                    lambda: self.backup_snapshot(volumes, k, deadline, began, attempt + 1),
                )
                return
            self.backup_snapshots_failed += 1
            self.backup_snapshot(volumes, k + 1, deadline, began)

        self.call("ec2:CreateSnapshot", taken, refused, retry=None)

    def busy(self) -> bool:
        """Anything left to happen but the two schedules' own next ticks?"""
        alive = any(h.terminated_at is None for h in self.helpers)
        return alive or len(self.queue) > 1

    # -- billing counters ------------------------------------------------------------------
    def step(self, transitions: int = 1, invocations: int = 1, seconds: float = LAMBDA) -> None:
        self.transitions += transitions
        self.transitions_per_second[int(self.now)] += transitions
        self.invocations += invocations
        self.lambda_seconds += invocations * seconds
        self.lambda_running[int(self.now)] += invocations * seconds

    # -- calls against the buckets ---------------------------------------------------------
    def bucket(self, action: str) -> TokenBucket | None:
        if not self.night.limits:
            return None
        if action in self.buckets:
            return self.buckets[action]
        if action.startswith("ec2:Describe"):
            return self.describe.setdefault(action, TokenBucket(DESCRIBE))
        return None

    def call(
        self,
        action: str,
        done: Callable[[], None],
        failed: Callable[[], None] | None,
        retry: Retrier | None = THROTTLE_RETRY,
    ) -> None:
        """One handler's call: botocore's retries, then its task's AwsThrottled Retry (each
        retry a transition and an invocation), then the restore fails. The backup's calls
        (retry None) have the SDK's retries only, taken as botocore's (assumed)."""
        self._attempt(action, done, failed, 0, 0, retry)

    def _attempt(
        self,
        action: str,
        done: Callable[[], None],
        failed: Callable[[], None] | None,
        sdk: int,
        task: int,
        retry: Retrier | None,
    ) -> None:
        self.calls[action] += 1
        self.per_second[action][int(self.now)] += 1
        bucket = self.bucket(action)
        if bucket is None or bucket.take(self.now):
            done()
            return
        self.throttled[action] += 1
        if sdk + 1 < BOTOCORE_ATTEMPTS:
            delay = self.rng.random() * 2 ** (sdk + 1)
            self.at(
                self.now + delay,
                lambda: self._attempt(action, done, failed, sdk + 1, task, retry),
            )
            return
        if retry is not None and task < retry.attempts and failed is not None:
            delay = retry.delay(task, self.rng)
            self.step()  # the task's retry: a transition and an invocation

            def again() -> None:
                self._attempt(action, done, failed, 0, task + 1, retry)

            self.at(self.now + delay, again)
            return
        if failed is not None:
            failed()
        else:
            done()  # a call nobody waits for (a poll, the backup's): counted, not fatal

    def paced(self, action: str, then: Callable[[], None]) -> None:
        """pacing.turn at this moment: the action's slot from its pacer (logic/pacing.take,
        the ledger's arithmetic), waited for inside the invocation when close (billed), else
        handed to the state machine: the task ends, "Our slot ...?", the Wait of whole
        seconds, the task again (another invocation), and `then` at the slot."""
        rates = self.night.paced_rates
        if not rates or action not in rates:
            then()
            return
        slot, self.pacers[action] = pacing.take(
            self.pacers.get(action), self.now, pacing.gap_seconds(rates[action])
        )
        wait = slot - self.now
        if wait <= 0:
            then()
        elif pacing.waits_in_invocation(wait, FUNCTION_TIMEOUT_SECONDS - LAMBDA):
            self.lambda_seconds += wait
            self.lambda_running[int(self.now)] += wait
            self.at(slot, then)
        else:
            self.paced_waits[action] += 1
            self.step(2, 0)  # "Our slot ...?", the Wait
            waited = self.now + LAMBDA + pacing.slot(slot, self.now).wait_seconds
            self.at(waited, lambda: (self.step(), then()))

    def calls_at(self, calls: Calls, start: float) -> None:
        for offset, action in calls:
            self.at(start + offset, lambda a=action: self.call(a, lambda: None, None))

    # -- a restore -------------------------------------------------------------------------
    def start(self, r: Restore) -> None:
        self.executions += 1
        self.starts_per_second[int(self.now)] += 1
        self.calls["states:StartExecution"] += 1
        self.step(3, 3)  # read, the Map, resolve, restore or skip?, claim, ours?
        self.step(3, 0)
        self.calls_at(RESOLVE_CALLS, self.now)
        self.at(self.now + BEFORE_PREPARE, lambda: self.prepare(r))

    def online(self) -> list[Helper]:
        """Online and taking work: a helper past HelperMaxHours drains."""
        return [
            h
            for h in self.helpers
            if h.terminated_at is None and h.online_at <= self.now and not self.draining(h)
        ]

    def draining(self, h: Helper) -> bool:
        return self.now - h.launched_at > self.night.max_hours * 3600

    def prepare(self, r: Restore) -> None:
        """fleet.prepare: a free turn on an Online helper, else a launch, else a line."""
        if r.launch_attempts == 0:
            self.step()  # "Prepare the helper"
        self.calls_at(PREPARE_CALLS, self.now)
        online = self.online()
        if any(h.terminated_at is None for h in self.helpers):
            self.calls_at(PREPARE_AGENTS, self.now)
        decided = self.now + LAMBDA
        free = [h for h in online if h.load() < self.night.concurrency]
        if free:
            self.at(decided, lambda: self.join(r, min(free, key=lambda h: (h.load(), h.number))))
            return
        if self.places < self.night.max_helpers:
            self.places += 1
            self.calls_at(LAUNCH_CALLS, self.now)
            h = Helper(len(self.helpers), decided, decided + self.night.boot_seconds, int(decided))
            self.helpers.append(h)
            r.helper = h
            self.at(decided, lambda: self.boot_poll(r, h))
            return
        if online:
            self.at(decided, lambda: self.join(r, min(online, key=lambda h: (h.load(), h.number))))
            return
        if r.launch_attempts >= LAUNCH_RETRY.attempts:
            self.fail(r, "HelperLaunchDelayed past its retries (waiting)")
            return
        delay = LAUNCH_RETRY.delay(r.launch_attempts, self.rng)
        r.launch_attempts += 1
        self.step()  # the retry of "Prepare the helper"
        self.at(decided + delay, lambda: self.prepare(r))

    def boot_poll(self, r: Restore, h: Helper) -> None:
        """ "Is the helper up?" -> wait 30 s -> "Is the helper online?" until it is."""
        self.step(1, 0)  # "Is the helper up?"
        look = self.now + BOOT_POLL_SECONDS

        def looked() -> None:
            self.step(2, 1)  # the Wait, "Is the helper online?"
            self.calls_at(POLL_CALLS, self.now)
            if h.online_at <= self.now + LAMBDA:
                self.at(self.now + LAMBDA, lambda: self.join(r, h, reused=False))
            else:
                self.at(self.now + LAMBDA, lambda: self.boot_poll(r, h))

        self.at(look, looked)

    def join(self, r: Restore, h: Helper, reused: bool = True) -> None:
        if h.terminated_at is not None:
            self.fail(r, "its helper was terminated (HelperMaxHours) before its turn")
            return
        self.step(1, 0)  # "Is the helper up?"
        self.step()  # "Take a turn on the helper"
        if reused:
            h.used = int(self.now)  # fleet._reuse: the place noted used (epoch seconds)
        r.helper = h
        if h.holders < self.night.concurrency and not h.line:
            self.hold(r, h, self.now)
        else:
            r.queued_at = queued = self.now
            h.line.append(r)
            self.at(self.now + TURN_TIMEOUT_SECONDS, lambda: self.turn_timeout(r, queued))
        self.turn_writes_per_second[(h.number, int(self.now))] += 1

    def turn_timeout(self, r: Restore, queued: float) -> None:
        if r.queued_at != queued or r.verdict:
            return  # its turn came, or it was sent to another helper's line
        if self.now - r.queued_at > self.night.max_wait_hours * 3600:
            assert r.helper is not None
            r.helper.line.remove(r)
            self.fail(r, "WaitedTooLong (waiting)")
            return
        self.step()  # the timed-out task, retried
        self.at(self.now + TURN_TIMEOUT_SECONDS, lambda: self.turn_timeout(r, queued))

    def hold(self, r: Restore, h: Helper, start: float) -> None:
        """The turn, from `start` ("Take a turn" entered, or the previous holder's "Give back
        the helper"), step by step: a throttled call delays what follows; one throttled past
        botocore's and the task's retries fails the restore (its Catch gives the turn back)."""
        if r.queued_at is not None:
            self.waits.append(start - r.queued_at)
        r.queued_at = None
        h.holders += 1
        state: dict[str, float] = {}

        def abort(action: str = "") -> None:
            if r.verdict:
                return
            if "created" in state:
                self.volumes_alive -= 1  # the cleanup deletes it
            self.fail(r, f"{action} throttled past every retry".lstrip())
            self.release(h)

        def create() -> None:
            self.paced("ec2:CreateVolume", lambda: self.call("ec2:CreateVolume", created, abort))

        volume = f"vol-{r.number:017x}"  # the key of the volume's jittered pauses

        def created() -> None:
            state["created"] = self.now
            self.volumes_alive += 1
            self.volume_wait(
                "volume_available",
                volume,
                T["volume_available_seconds"],
                CREATE_LOOKS_BEFORE,
                attach,
                abort,
                state["created"],
            )

        def attach() -> None:
            self.paced("ec2:AttachVolume", attach_now)

        def attach_now() -> None:
            self.calls_at([(LAMBDA, "ec2:DescribeInstances")], self.now)
            self.at(self.now + LAMBDA, lambda: self.call("ec2:AttachVolume", attached, abort))

        def attached() -> None:
            state["attached"] = self.now
            self.volume_wait(
                "volume_attached",
                volume,
                T["attach_seconds"],
                ATTACH_LOOKS_BEFORE,
                lambda: command(0),
                abort,
                state["created"],
            )

        def command(k: int) -> None:
            if k == len(COMMANDS):
                detach()
                return
            state, seconds, after = COMMANDS[k]

            def sent() -> None:
                self.calls_at(COMMAND_LOOKS, self.now)
                end = self.now + seconds + COMMAND_AFTER_CALL
                self.calls_at(
                    [(seconds + COMMAND_AFTER_CALL - LAMBDA, "ssm:GetCommandInvocation")]
                    * CALLBACK_LOOKS,
                    self.now,
                )
                self.at(end + after, lambda: command(k + 1))

            self.at(
                self.now + LAMBDA,
                lambda: self.call(
                    "ssm:SendCommand",
                    sent,
                    lambda: abort("ssm:SendCommand"),
                    COMMAND_RETRY[state],
                ),
            )

        def detach() -> None:
            self.at(self.now + LAMBDA, lambda: self.call("ec2:DetachVolume", detached, abort))

        def detached() -> None:
            self.volume_wait(
                "volume_detached",
                volume,
                T["detach_seconds"],
                DETACH_LOOKS_BEFORE,
                lambda: self.give_back(r, h, state["created"], state["attached"]),
                abort,
                state["created"],
            )

        self.at(start + CREATE_AFTER, create)

    def volume_wait(
        self,
        what: str,
        volume: str,
        latency: float,
        before: int,
        then: Callable[[], None],
        abort: Callable[[], None],
        created: float,
    ) -> None:
        """A handler's wait for its volume, on the handlers' schedule (logic/polling.py):
        inside the invocation while its share lasts, then the state machine's loop (a Wait
        of whole seconds, a look, a Choice), until `latency` has passed since the call."""
        started = self.now
        ready = started + latency
        for _ in range(before):  # the "ours?" check before the call that started it
            self.look_at_volume(created, lambda _: None, None)
        looks = 0

        def pause() -> float:
            waited = self.now - started
            left = FUNCTION_TIMEOUT_SECONDS - LAMBDA - waited
            inside = polling.pause_in_invocation(what, looks, waited, left, key=volume)
            if inside is not None:
                return inside
            self.step(LOOP_ROUND, 1)
            return float(max(1, math.ceil(polling.pause_after(what, max(looks, 1), key=volume))))

        def look() -> None:
            nonlocal looks
            looks += 1
            self.look_at_volume(created, looked, abort)

        def looked(as_of: float) -> None:
            if as_of >= ready - 1e-9:
                then()
            else:
                self.at(self.now + pause(), look)

        self.at(self.now + pause(), look)

    def look_at_volume(
        self,
        created_at: float,
        seen: Callable[[float], None],
        abort: Callable[[], None] | None,
    ) -> None:
        """One look at a temporary volume (looks.SharedLook.volume): `seen` gets the moment
        the volume was seen as of. The first look a second after the last one is the looker's:
        DescribeVolumes by our tag, a call a page of looks.PAGE; a look within the next
        looks.FRESH_MS of a complete look reads its answer (the ledger, no EC2 call) if the
        volume existed when that look began; else it looks itself (one DescribeVolumes)."""
        if not self.night.shared_look:
            self.own_looks += 1
            self.call("ec2:DescribeVolumes", lambda: seen(self.now), abort)
            return
        now = self.now
        if now - self.looked_at >= shared_looks.LOOK_EVERY_MS / 1000:
            self.looked_at = now
            self.shared_looks += 1
            pages = max(1, math.ceil(self.volumes_alive / shared_looks.PAGE))

            def page(left: int) -> None:
                if left == 0:
                    self.answered_at = max(self.answered_at, now)
                    seen(now)
                else:
                    self.call("ec2:DescribeVolumes", lambda: page(left - 1), abort)

            page(pages)
            return
        fresh = now - self.answered_at <= shared_looks.FRESH_MS / 1000
        if fresh and created_at <= self.answered_at:
            seen(self.answered_at)
            return
        self.own_looks += 1  # no fresh answer, or a volume newer than it
        self.call("ec2:DescribeVolumes", lambda: seen(self.now), abort)

    def volume_deleted(self, _: float) -> None:
        self.volumes_alive -= 1

    def give_back(self, r: Restore, h: Helper, created_at: float, attached_at: float) -> None:
        h.busy.append((attached_at, self.now))
        self.turn_writes_per_second[(h.number, int(self.now))] += 1
        if r.verdict == "failed":
            self.release(h)
            return
        if h.terminated_at is not None:
            self.fail(r, "its helper was terminated (HelperMaxHours) mid-restore")
        else:
            self.step(AFTER_TURN_TRANSITIONS, AFTER_TURN_INVOCATIONS)
            self.lambda_seconds += IN_HANDLER_WAITS
            self.lambda_running[int(self.now)] += IN_HANDLER_WAITS
            self.snapshot(r, created_at)
        self.release(h)

    def snapshot(self, r: Restore, created_at: float) -> None:
        """ "Snapshot the consistent volume", after the turn: its CreateSnapshot retried as
        its task's Retry says (the temporary volume waits); past it, the restore fails and
        "Clean up after the failure" deletes the volume."""
        late = SNAPSHOT_CALL_AFTER  # what follows is timed from an on-time CreateSnapshot

        def taken() -> None:
            self.calls_at([(at - late, a) for at, a in AFTER_SNAPSHOT_CALLS], self.now)
            self.at(
                self.now - late + DELETE_LOOK_AFTER,
                lambda: self.look_at_volume(created_at, self.volume_deleted, None),
            )
            life = self.now - late + VOLUME_DELETED_AFTER_GIVE_BACK - created_at
            self.volume_gib_seconds += r.gib * max(life, 60.0)
            r.verdict = "verified"
            r.ended_at = self.now - late + AFTER_GIVE_BACK
            self.at(self.now - late + SKIP_STARTS_AFTER_GIVE_BACK, self.skip_execution)

        def refused() -> None:
            self.volume_gib_seconds += r.gib * max(self.now + LAMBDA - created_at, 60.0)
            self.volumes_alive -= 1  # the cleanup deletes it
            self.fail(r, "ec2:CreateSnapshot throttled past every retry")

        def snapshot_now() -> None:
            self.calls_at(SNAPSHOT_LOOKS, self.now)
            self.at(
                self.now + late,
                lambda: self.call("ec2:CreateSnapshot", taken, refused, SNAPSHOT_RETRY),
            )

        self.paced("ec2:CreateSnapshot", snapshot_now)

    def release(self, h: Helper) -> None:
        """The turn given back, handed to the oldest waiter."""
        h.holders -= 1
        h.freed_at = int(self.now)
        if h.line and h.holders < self.night.concurrency and h.terminated_at is None:
            nxt = h.line.pop(0)
            start = self.now
            self.at(self.now + LAMBDA, lambda: self.hold(nxt, h, start))

    def skip_execution(self) -> None:
        self.executions += 1
        self.starts_per_second[int(self.now)] += 1
        self.calls["states:StartExecution"] += 1
        self.step(SKIP_TRANSITIONS, SKIP_INVOCATIONS)
        self.calls_at(SKIP_CALLS, self.now)

    def fail(self, r: Restore, why: str) -> None:
        if not r.verdict:
            r.verdict, r.why, r.ended_at = "failed", why, self.now

    # -- the schedules -------------------------------------------------------------------
    def retire(self) -> None:
        """fleet.retire_idle: idle for HelperIdleMinutes; past HelperMaxHours drained (its
        line sent elsewhere) then terminated, or terminated past the turn lease too."""
        self.step(0, 1)
        self.calls_at(RETIRE_CALLS, self.now)
        for h in self.helpers:
            if h.terminated_at is not None:
                continue
            age = self.now - h.launched_at
            if age > self.night.max_hours * 3600 + DRAIN_BOUND_SECONDS:
                self.terminate(h)
            elif self.draining(h):
                if h.load() > 0:
                    self.send_line_elsewhere(h)
                else:
                    self.terminate(h)
            elif h.online_at > self.now:
                continue
            elif h.load() > 0:
                h.used = int(self.now)  # the ledger keeps whole epoch seconds
            elif int(self.now) - max(h.used, h.freed_at) >= self.night.idle_minutes * 60:
                self.terminate(h)
        if self.busy():
            self.at(self.now + RETIRE_PERIOD, self.retire)

    def send_line_elsewhere(self, h: Helper) -> None:
        """turns.send_line_elsewhere: each waiter's task fails with HelperDraining, caught
        by "Take a turn on the helper" and back to "Prepare the helper" (its retries anew)."""
        for r in h.line:
            r.queued_at = None
            r.launch_attempts = 0
            self.at(self.now + LAMBDA, lambda r=r: self.prepare(r))
        h.line.clear()

    def terminate(self, h: Helper) -> None:
        h.terminated_at = self.now
        self.places -= 1
        self.call("ec2:TerminateInstances", lambda: None, None)
        for r in h.line:
            self.fail(r, "its helper was terminated (HelperMaxHours) while it waited")
        h.line.clear()

    def hourly(self) -> None:
        self.step(0, 1)
        if self.busy():
            self.at(self.now + HOURLY, self.hourly)


def run(night: Night) -> Model:
    m = Model(night)
    m.run()
    return m


def figures(m: Model) -> dict[str, Any]:
    """What the bench reads of a modelled night (the same names as bench/allin.py's bill)."""
    n = m.night
    verified = [r for r in m.restores if r.verdict == "verified"]
    failed = [r for r in m.restores if r.verdict == "failed"]
    billed = [max((h.terminated_at or m.now) - h.launched_at, 60.0) for h in m.helpers]
    busy_each = [_covered(h.busy) for h in m.helpers]
    busy = sum(busy_each)
    ec2 = {a: c for a, c in m.calls.items() if a.startswith("ec2:")}
    ec2_throttled = sum(v for a, v in m.throttled.items() if a.startswith("ec2:"))
    first = min((r.arrived for r in m.restores), default=0.0)
    # Invocation-seconds begun in a second: about the concurrency Lambda sees then.
    peak_lambda = max(m.lambda_running.values(), default=0)
    return {
        "snapshots": len(m.restores),
        "verified": len(verified),
        "failed": len(failed),
        "failed_why": dict(Counter(r.why for r in failed)),
        "not_ended": sum(1 for r in m.restores if not r.verdict),
        "executions": m.executions,
        "transitions": m.transitions,
        "lambda_invocations": m.invocations,
        "lambda_gb_seconds": round(m.lambda_seconds * 0.25, 3),
        "helpers_launched": len(m.helpers),
        "helper_billed_seconds": round(sum(billed), 1),
        "helper_busy_seconds": round(busy, 1),
        "helpers_detail": [
            {"billed_seconds": round(b, 1), "busy_seconds": round(u, 1)}
            for b, u in zip(billed, busy_each, strict=True)
        ],
        "backup_instances_missed": m.backups_missed,
        "backup_snapshots_failed": m.backup_snapshots_failed,
        "backup_retries": m.backup_retries,
        "create_snapshot_throttled": m.throttled.get("ec2:CreateSnapshot", 0),
        # Our paced calls a second, and the slots handed to the state machine's Wait.
        "paced_rates": dict(m.night.paced_rates or {}),
        "paced_waits": dict(m.paced_waits),
        "backup_ended_at": round(max(m.backup_ends, default=0.0), 1),
        "first_event_at": round(first, 1),
        "longest_wait_seconds": round(max(m.waits, default=0.0), 1),
        "temporary_volume_gib_seconds": round(m.volume_gib_seconds, 1),
        "consistent_snapshot_gib": round(len(verified) * n.consistent_gib_per_restore, 4),
        "dynamodb_writes": round(len(m.restores) * n.dynamodb_writes_per_restore),
        "dynamodb_reads": round(len(m.restores) * n.dynamodb_reads_per_restore),
        "last_restore_ended_at": round(max((r.ended_at or 0.0 for r in m.restores), default=0), 1),
        "all_verified_after_first_event_seconds": round(
            max((r.ended_at or 0.0) for r in verified) - first, 1
        )
        if verified
        else None,
        "api_calls": dict(m.calls.most_common()),
        "ec2_calls": sum(ec2.values()),
        "ec2_throttled": ec2_throttled,
        "ec2_throttled_share": round(ec2_throttled / max(sum(ec2.values()), 1), 5),
        "throttled": dict(m.throttled.most_common()),
        "peak_per_second": {a: max(c.values()) for a, c in sorted(m.per_second.items()) if c},
        "peak_describe_volumes_per_second": max(
            m.per_second["ec2:DescribeVolumes"].values(), default=0
        ),
        "describe_volumes_per_snapshot": round(
            m.calls["ec2:DescribeVolumes"] / max(len(m.restores), 1), 2
        ),
        "mean_describe_volumes_per_second": round(
            m.calls["ec2:DescribeVolumes"] / max(len(m.per_second["ec2:DescribeVolumes"]), 1), 1
        ),
        # Looks at volumes (waits and "ours?" checks): shared looks made (each a
        # DescribeVolumes a page) and looks made alone (no fresh answer, or a new volume).
        "volume_looks": {"shared": m.shared_looks, "own": m.own_looks},
        "peak_start_executions_per_second": max(m.starts_per_second.values(), default=0),
        "peak_transitions_per_second": max(m.transitions_per_second.values(), default=0),
        "peak_lambda_concurrency_estimate": math.ceil(peak_lambda),
        "peak_turn_item_writes_per_second": max(m.turn_writes_per_second.values(), default=0),
    }


def _covered(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered (a helper at HelperConcurrency > 1 holds turns that overlap)."""
    covered, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            covered += stop - max(start, end)
            end = stop
    return covered


def arrivals_of(scenario: dict[str, Any]) -> list[tuple[float, float]]:
    """A bench scenario's snapshot events: (moment, the snapshot's volume GiB)."""
    sizes = {
        f"{alias}.{v['alias']}": float(v["size"])
        for alias, instance in scenario["instances"].items()
        for v in instance.get("volumes", [])
    }
    return [
        (
            float(step.get("at", 0.0)),
            sizes[scenario["snapshots"][step["deliver"]["snapshot"]]["volume"]],
        )
        for step in scenario["steps"]
        if "deliver" in step
    ]
