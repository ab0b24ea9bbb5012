"""What the fault-injection suite tries, and what must happen: one row per case.

Each case changes the base scenario (scenarios/base.json: web1 with a data volume D, the
stack's helper, one VSS snapshot of D delivered by its event) and states the outcome an
operator would see. The table of docs/faults.md, "What was tried, and what happened", is
rendered from this list (table.py), so the two cannot drift.
"""

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from botocore.loaders import create_loader

from vss_restore.logic.polling import IN_INVOCATION
from vss_restore.logic.resolve import ALREADY_VERIFIED, BEING_RESTORED, NOT_VSS, OWN_OUTPUT

# Open bugs: a case naming one is expected to fail until it is fixed (strict xfail).
BUGS: dict[str, str] = {}

NO_STEP = "(none)"
THROTTLED = "throttled, then fine"
THROTTLED_LONG = "throttled past the 5 retries other steps make, then fine"
PERMANENT = "permanent error"
TIMEOUT = "timeout: "

EC2_DENIED = "UnauthorizedOperation"
DENIED = "AccessDeniedException"  # DynamoDB, SSM, KMS


@cache
def sdk_attempts(service: str) -> int:
    """Attempts botocore makes (legacy retry mode) before a handler sees a throttling error."""
    retry = create_loader().load_data("_retry")["retry"]
    default = int(retry["__default__"]["max_attempts"])
    return int(retry.get(service, {}).get("__default__", {}).get("max_attempts", default))


def throttled(action: str, skip: int = 0, function: str = "") -> dict[str, Any]:
    """Throttled one time more than the SDK retries: the handler sees AwsThrottled once."""
    service = action.split(":", 1)[0]
    code = "RequestLimitExceeded" if service == "ec2" else "ThrottlingException"
    fault = {"action": action, "error": code, "times": sdk_attempts(service), "skip": skip}
    return fault | ({"function": function} if function else {})


def throttled_spell(action: str, task_attempts: int) -> dict[str, Any]:
    """Throttled through the SDK's retries `task_attempts` times in a row: the handler sees
    AwsThrottled that often, and its task must retry past it."""
    fault = throttled(action)
    return fault | {"times": fault["times"] * task_attempts}


# Task attempts a throttled spell fails on the steps that retry longer: one more than the
# 5 retries every step had, which would have failed the restore.
LONG_SPELL = 7


def refused(action: str, error: str, skip: int = 0, function: str = "") -> dict[str, Any]:
    """The call fails once with an error no retry helps; the cleanup's own calls work."""
    fault = {"action": action, "error": error, "times": 1, "skip": skip}
    return fault | ({"function": function} if function else {})


@dataclass(frozen=True)
class Case:
    id: str
    step: str  # the workflow step (or the input) the case is about
    tried: str  # what goes wrong, in words
    injected: str = ""  # what the change injects, in words, where the faults do not say it
    change: dict[str, Any] = field(default_factory=dict)  # merged into the base scenario
    # What must happen.
    status: str = "SUCCEEDED"  # the first execution's status
    verdict: str = "verified"  # verified | failed | skipped | "" (no verdict: input refused)
    reason: str = ""  # regular expression the verdict's reason (or the error) must match
    tagged: bool = True  # the verdict is written on the source snapshot
    alert: bool = False
    volumes_created: int = 1
    volume_left: str = ""  # state of the temporary volume left, named in the alert; "" none
    snapshot_left: str = ""  # what the workflow's own snapshot left is, when one is
    # The cleanup deleted the consistent snapshot the restore had started (#16); "pending":
    # still pending then, its deletion accepted (EBS deletes it once it completes) and its
    # completion event, later, skipped without an alert.
    snapshot_deleted: str = ""
    retried_by: str = ""  # the function that saw AwsThrottled and was retried
    retries: int = 1  # how many times it saw AwsThrottled (its task retried as often)
    commands: dict[str, int] | None = None  # disk tool commands sent, by Action
    key: str = ""  # the snapshot is encrypted with a KMS key in this state
    counts: dict[str, int] | None = None  # verdicts over every execution, for many restores
    peak: int | None = None  # most volumes attached to the helper at once
    # The first execution's virtual seconds: (at least, at most), e.g. a fallback's wait.
    took: tuple[float, float] | None = None
    bug: tuple[str, ...] = ()  # open bugs (BUGS) that make this case fail today


def _on_demand(request: dict[str, Any]) -> dict[str, Any]:
    return {"steps": [{"start": {"input": request}}]}


def _event(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    raw = {"source": "aws.ec2", "detail-type": detail_type, "detail": detail}
    return {"steps": [{"deliver": {"raw": raw}}]}


def _helper(**spec: Any) -> dict[str, Any]:
    return {"instances": {"helper": spec}}


SINGLE = "EBS Snapshot Notification"
COMMAND_EVENT = "EC2 Command Invocation Status-change Notification"
INSPECT_EVENT_LOST = {"event": COMMAND_EVENT, "lost": True}
SNAPSHOT_EVENT_LOST = {"event": SINGLE, "lost": True}
MULTI = "EBS Multi-Volume Snapshots Completion Status"
WINDOWS_DEVICES = [{"alias": "C", "system": True, "drive_letters": ["C"]}] + [
    {"alias": f"xvd{letter}", "device": f"xvd{letter}"} for letter in "fghijklmnopqrstuvwxyz"
]
# The revert runs from about 48 s to 168 s with the default revert_seconds (120).
REVERT_RUNNING = {"timing": {"revert_seconds": 120}}
DELIVER: dict[str, Any] = {
    "deliver": {"snapshot": "snap", "event": "createSnapshot"},
    "wait_for_events": False,
}


def _lost(*back: dict[str, Any]) -> dict[str, Any]:
    lost = {"set_ping_status": {"instance": "helper", "status": "ConnectionLost"}, "at": 60}
    return {**REVERT_RUNNING, "steps": [DELIVER, {**lost, "wait_for_events": not back}, *back]}


# The loop after the create's own wait: a volume slower than that wait, and the create's
# looks (logic/polling.py's schedule inside the invocation) left alone.
_CREATE_WAIT = IN_INVOCATION["volume_available"]
SLOW_VOLUME = {"timing": "volume_available_seconds", "seconds": _CREATE_WAIT.at_most_seconds + 10}
LOOP_AFTER_CREATE = f"the volume outlasts the create's {_CREATE_WAIT.at_most_seconds:g} s wait"

TEN = "10 VSS snapshots of D, their events at the same instant"
# "Give back the helper"'s own UpdateItems: other steps update the ledger before it (the
# helper noted on the claim, the helper's item made, each answered command wait taken out
# of the `line` index), so the fault aims at the function.
GIVE_BACK = "GiveBackTurnFunction"


def _ten(concurrency: int) -> dict[str, Any]:
    """Ten VSS snapshots of D, their events all at once, one helper."""
    return {
        "parameters": {"HelperConcurrency": concurrency},
        "snapshots": {f"night{n}": {"volume": "web1.D"} for n in range(10)},
        "steps": [
            *(
                {**DELIVER, "deliver": {**DELIVER["deliver"], "snapshot": f"night{n}"}}
                for n in range(10)
            ),
            {"wait": "executions"},
        ],
    }


def _failed(reason: str, **case: Any) -> dict[str, Any]:
    return {"status": "FAILED", "verdict": "failed", "reason": reason, "alert": True, **case}


def _nothing_made(reason: str, **case: Any) -> dict[str, Any]:
    """Failed before any volume existed: a named error, nothing created."""
    return _failed(reason, volumes_created=0, **case)


def _fleet(*faults: dict[str, Any], never_online: int = 0) -> dict[str, Any]:
    """HelperMode=fleet: the restore launches its own helper; the run goes on for 30 minutes
    after the event, past HelperIdleMinutes and a retirement, so that no helper is left."""
    return {
        "parameters": {"HelperMode": "fleet", "HelperInstanceIds": ""},
        "fleet": {"never_online": never_online},
        # The base's two instances and the helpers launched fit (a new account's 5 vCPUs hold
        # one helper beside them: simulator/quotas.py); the quota is not what these test.
        "quotas": {"on_demand_standard_vcpus": 16},
        "faults": list(faults),
        "steps": [{"deliver": {"snapshot": "snap", "event": "createSnapshot"}}, {"advance": 1800}],
    }


def _boot_test(*faults: dict[str, Any], never_online: int = 0) -> dict[str, Any]:
    """BootTest=Weekly (docs/boot-test.md): the snapshot is of web1's system drive C:,
    restored on a helper the fleet launches; its consistent snapshot is then booted on a
    throwaway instance of web1's image, which is terminated whatever happens."""
    return {
        "parameters": {"HelperMode": "fleet", "HelperInstanceIds": "", "BootTest": "Weekly"},
        "snapshots": {"snap": {"volume": "web1.C"}},
        "fleet": {"boot_tests_never_online": never_online},
        # The base's instances, the helper and the throwaway clone fit; the quota is not what
        # these test (a new account's 5 vCPUs refuse the clone: simulator/quotas.py).
        "quotas": {"on_demand_standard_vcpus": 16},
        "faults": list(faults),
        "steps": [{"deliver": {"snapshot": "snap", "event": "createSnapshot"}}, {"advance": 1800}],
    }


def _malformed(reason: str) -> dict[str, Any]:
    """Not a request the workflow understands: the execution fails at once, no restore tried;
    ReleaseExecution alerts that the request was refused."""
    return {
        "status": "FAILED",
        "verdict": "",
        "reason": reason,
        "tagged": False,
        "alert": True,
        "volumes_created": 0,
    }


DELETED = "completed"
DELETED_PENDING = "pending"

CASES: list[Case] = [
    Case(id="no-fault", step=NO_STEP, tried="No fault: the control case"),
    # -- Resolve the snapshot: ec2:DescribeSnapshots -------------------------------------
    Case(
        id="resolve-throttled",
        step="Resolve the snapshot",
        tried=THROTTLED,
        change={"faults": [throttled("ec2:DescribeSnapshots")]},
        retried_by="ResolveSnapshotFunction",
    ),
    Case(
        id="resolve-refused",
        step="Resolve the snapshot",
        tried=PERMANENT,
        change={"faults": [refused("ec2:DescribeSnapshots", EC2_DENIED)]},
        **_nothing_made(EC2_DENIED, tagged=False),
    ),
    # -- Claim the snapshot: dynamodb:PutItem ---------------------------------------------
    Case(
        id="claim-throttled",
        step="Claim the snapshot",
        tried=THROTTLED,
        change={"faults": [throttled("dynamodb:PutItem")]},
        retried_by="ClaimSnapshotFunction",
    ),
    Case(
        id="claim-refused",
        step="Claim the snapshot",
        tried=PERMANENT,
        change={"faults": [refused("dynamodb:PutItem", DENIED)]},
        **_nothing_made(DENIED),
    ),
    # -- Prepare the helper: ec2:DescribeInstances, ssm:DescribeInstanceInformation -------
    Case(
        id="helper-instance-throttled",
        step="Prepare the helper",
        tried=THROTTLED,
        change={"faults": [throttled("ec2:DescribeInstances")]},
        retried_by="PrepareHelperFunction",
    ),
    Case(
        id="helper-instance-refused",
        step="Prepare the helper",
        tried=PERMANENT,
        change={"faults": [refused("ec2:DescribeInstances", EC2_DENIED)]},
        **_nothing_made(EC2_DENIED),
    ),
    Case(
        id="helper-agent-throttled",
        step="Prepare the helper",
        tried=THROTTLED,
        change={"faults": [throttled("ssm:DescribeInstanceInformation")]},
        retried_by="PrepareHelperFunction",
    ),
    Case(
        id="helper-agent-refused",
        step="Prepare the helper",
        tried=PERMANENT,
        change={"faults": [refused("ssm:DescribeInstanceInformation", DENIED)]},
        **_nothing_made(DENIED),
    ),
    # -- Is the helper online? (HelperMode=fleet): ssm:DescribeInstanceInformation ----------
    Case(
        id="fleet-online-throttled",
        step="Is the helper online?",
        tried=THROTTLED,
        change=_fleet(
            throttled("ssm:DescribeInstanceInformation", function="HelperOnlineFunction")
        ),
        retried_by="HelperOnlineFunction",
    ),
    Case(
        id="fleet-online-refused",
        step="Is the helper online?",
        tried=PERMANENT,
        injected="HelperMode=fleet; the retirement terminates the idle helper",
        change=_fleet(
            refused("ssm:DescribeInstanceInformation", DENIED, function="HelperOnlineFunction")
        ),
        **_nothing_made(DENIED),
    ),
    Case(
        id="fleet-never-online",
        step="Is the helper online?",
        tried=TIMEOUT + "the launched helper never Online past HelperBootMinutes",
        injected="HelperMode=fleet, HelperBootMinutes 20; the helper is terminated",
        change=_fleet(never_online=1),
        **_nothing_made("HelperNeverOnline.*terminated"),
        took=(1200, 1300),
    ),
    # -- Take a turn on the helper: dynamodb:UpdateItem -----------------------------------
    Case(
        id="turn-throttled",
        step="Take a turn on the helper",
        tried=THROTTLED,
        change={"faults": [throttled("dynamodb:UpdateItem")]},
        retried_by="TakeTurnFunction",
    ),
    Case(
        id="turn-refused",
        step="Take a turn on the helper",
        tried=PERMANENT,
        change={"faults": [refused("dynamodb:UpdateItem", DENIED)]},
        **_nothing_made(DENIED),
    ),
    # -- Create the volume: kms:DescribeKey (encrypted), ec2:CreateVolume -----------------
    Case(
        id="key-throttled",
        step="Create the volume",
        tried=THROTTLED,
        change={"faults": [throttled("kms:DescribeKey")]},
        key="Enabled",
        retried_by="CreateVolumeFunction",
    ),
    Case(
        id="key-refused",
        step="Create the volume",
        tried=PERMANENT,
        change={"faults": [refused("kms:DescribeKey", DENIED)]},
        key="Enabled",
        **_nothing_made("KeyNotUsable.*" + DENIED),
    ),
    Case(
        id="create-throttled",
        step="Create the volume",
        tried=THROTTLED,
        change={"faults": [throttled("ec2:CreateVolume")]},
        retried_by="CreateVolumeFunction",
    ),
    Case(
        id="create-refused",
        step="Create the volume",
        tried=PERMANENT,
        change={"faults": [refused("ec2:CreateVolume", "InvalidParameterValue")]},
        **_nothing_made("InvalidParameterValue"),
    ),
    # -- Its wait for the volume, inside the invocation: ec2:DescribeVolumes --------------
    Case(
        id="create-wait-throttled",
        step="Create the volume",
        tried=THROTTLED,
        change={"faults": [throttled("ec2:DescribeVolumes", function="CreateVolumeFunction")]},
        retried_by="CreateVolumeFunction",
    ),
    Case(
        id="create-wait-refused",
        step="Create the volume",
        tried=PERMANENT,
        change={
            "faults": [refused("ec2:DescribeVolumes", EC2_DENIED, function="CreateVolumeFunction")]
        },
        **_failed(EC2_DENIED),
    ),
    Case(
        id="volume-error",
        step="Create the volume",
        tried="the volume ends in the error state",
        change={"faults": [{"outcome": "volume_error"}]},
        **_failed("VolumeFailed.*error state"),
    ),
    # -- Wait for the volume, the loop after that: ec2:DescribeVolumes --------------------
    Case(
        id="volume-state-throttled",
        step="Is the volume available?",
        tried=THROTTLED,
        injected=LOOP_AFTER_CREATE,
        change={
            "faults": [
                SLOW_VOLUME,
                throttled("ec2:DescribeVolumes", function="VolumeStateFunction"),
            ]
        },
        retried_by="VolumeStateFunction",
    ),
    Case(
        id="volume-state-refused",
        step="Is the volume available?",
        tried=PERMANENT,
        injected=LOOP_AFTER_CREATE,
        change={
            "faults": [
                SLOW_VOLUME,
                refused("ec2:DescribeVolumes", EC2_DENIED, function="VolumeStateFunction"),
            ]
        },
        **_failed(EC2_DENIED),
    ),
    Case(
        id="volume-slow",
        step="Is the volume available?",
        tried=TIMEOUT + "creating past the wait's bound, available later",
        change={"faults": [{"timing": "volume_available_seconds", "seconds": 1800}]},
        **_failed("WaitTimedOut.*volume_available"),
    ),
    Case(
        id="volume-stuck",
        step="Is the volume available?",
        tried=TIMEOUT + "creating for good",
        change={"faults": [{"timing": "volume_available_seconds", "seconds": 4000}]},
        **_failed("WaitTimedOut", volume_left="creating"),
    ),
    # -- Attach the volume: ec2:AttachVolume ------------------------------------------------
    Case(
        id="attach-throttled",
        step="Attach the volume",
        tried=THROTTLED,
        change={"faults": [throttled("ec2:AttachVolume")]},
        retried_by="AttachVolumeFunction",
    ),
    Case(
        id="attach-refused",
        step="Attach the volume",
        tried=PERMANENT,
        change={"faults": [refused("ec2:AttachVolume", "InvalidParameterValue")]},
        **_failed("InvalidParameterValue"),
    ),
    Case(
        id="attach-slow",
        step="Is the volume attached?",
        tried=TIMEOUT + "attaching past the wait's bound",
        change={"faults": [{"timing": "attach_seconds", "seconds": 1000}]},
        **_failed("WaitTimedOut.*volume_attached"),
    ),
    # -- Inspect the disk: ssm:SendCommand, ssm:GetCommandInvocation ----------------------
    Case(
        id="send-throttled",
        step="Inspect the disk",
        tried=THROTTLED,
        change={"faults": [throttled("ssm:SendCommand")]},
        retried_by="RunDiskToolFunction",
    ),
    Case(
        id="send-throttled-long",
        step="Inspect the disk",
        tried=THROTTLED_LONG,
        change={"faults": [throttled_spell("ssm:SendCommand", LONG_SPELL)]},
        retried_by="RunDiskToolFunction",
        retries=LONG_SPELL,
    ),
    Case(
        id="inspect-refused",
        step="Inspect the disk",
        tried=PERMANENT,
        change={"faults": [refused("ssm:SendCommand", DENIED)]},
        **_failed(DENIED, commands={}),
    ),
    Case(
        id="invocation-throttled",
        step="Is the inspection done?",
        tried=THROTTLED,
        # Its event lost, the task times out into this poll (the look after sending is
        # the first GetCommandInvocation, the poll's the second).
        injected="the Inspect event lost",
        change={"faults": [throttled("ssm:GetCommandInvocation", skip=1), INSPECT_EVENT_LOST]},
        retried_by="DiskToolResultFunction",
    ),
    Case(
        id="invocation-refused",
        step="Is the inspection done?",
        tried=PERMANENT,
        injected="the Inspect event lost",
        change={
            "faults": [refused("ssm:GetCommandInvocation", DENIED, skip=1), INSPECT_EVENT_LOST]
        },
        **_failed(DENIED, commands={"Inspect": 1}),
    ),
    Case(
        id="inspect-slow",
        step="Is the inspection done?",
        tried=TIMEOUT + "runs past the wait's bound",
        change={"faults": [{"timing": "inspect_seconds", "seconds": 4000}]},
        **_failed("WaitTimedOut.*inspect", commands={"Inspect": 1}),
    ),
    # -- Revert the shadow copies ---------------------------------------------------------
    Case(
        id="revert-refused",
        step="Revert the shadow copies",
        tried=PERMANENT,
        change={"faults": [refused("ssm:SendCommand", DENIED, skip=1)]},
        **_failed(DENIED, commands={"Inspect": 1}),
    ),
    Case(
        id="revert-slow",
        step="Is the revert done?",
        tried=TIMEOUT + "runs past the document's 7200 s",
        change={"faults": [{"timing": "revert_seconds", "seconds": 8000}]},
        **_failed("RevertFailed.*ExecutionTimedOut", commands={"Inspect": 1, "Revert": 1}),
    ),
    # -- Check the disk -------------------------------------------------------------------
    Case(
        id="check-refused",
        step="Check the disk",
        tried=PERMANENT,
        change={"faults": [refused("ssm:SendCommand", DENIED, skip=2)]},
        **_failed(DENIED, commands={"Inspect": 1, "Revert": 1}),
    ),
    # -- The disk tool's events (SSM's invocation status change) -------------------------
    Case(
        id="command-event-lost",
        step="Inspect the disk",
        tried="SSM's event for the Inspect command is lost",
        injected="the task times out after 900 s, then polls the command",
        change={"faults": [{"event": COMMAND_EVENT, "lost": True}]},
        commands={"Inspect": 1, "Revert": 1, "Check": 1},
        took=(900, 1300),
    ),
    Case(
        id="command-event-duplicated",
        step="Inspect the disk",
        tried="SSM's event for the Inspect command comes twice, 30 s apart",
        injected="the second finds the task closed (TaskTimedOut), nothing else",
        change={"faults": [{"event": COMMAND_EVENT, "duplicate_after_seconds": 30}]},
        commands={"Inspect": 1, "Revert": 1, "Check": 1},
        took=(0, 600),
    ),
    Case(
        id="command-event-before-token",
        step="Inspect the disk",
        tried="the Inspect command's event comes before its token is kept",
        injected="the token's PutItem throttled 9 times (25.5 s of SDK backoff) while "
        "the 20 s Inspect ends; the look after keeping it completes the task",
        change={"faults": [{**throttled("dynamodb:PutItem", skip=1), "times": 9}]},
        commands={"Inspect": 1, "Revert": 1, "Check": 1},
        took=(0, 600),
    ),
    Case(
        id="revert-fails-on-windows",
        step="Revert the shadow copies",
        tried="Windows refuses the revert; the event fails the task",
        change={"faults": [{"windows": "Revert", "error": "VSS_E_OBJECT_NOT_FOUND"}]},
        **_failed("RevertFailed.*VSS_E_OBJECT_NOT_FOUND", commands={"Inspect": 1, "Revert": 1}),
    ),
    Case(
        id="snapshot-event-lost",
        step="Snapshot the consistent volume",
        tried="the consistent snapshot's completion event is lost",
        injected="the task times out after 3600 s, then polls the snapshot",
        change={"faults": [{"event": SINGLE, "lost": True}]},
        took=(3600, 4400),
    ),
    Case(
        id="check-slow",
        step="Is the check done?",
        tried=TIMEOUT + "runs past the document's 7200 s",
        change={"faults": [{"timing": "check_seconds", "seconds": 8000}]},
        **_failed("CheckFailed.*ExecutionTimedOut"),
    ),
    # -- The helper lost in the middle of the revert -------------------------------------
    Case(
        id="helper-lost",
        step="Is the revert done?",
        tried="helper's SSM agent lost during the revert, for good",
        change=_lost(),
        **_failed("RevertFailed.*ExecutionTimedOut|WaitTimedOut.*revert"),
        commands={"Inspect": 1, "Revert": 1},
    ),
    Case(
        id="helper-back",
        step="Is the revert done?",
        tried="helper's SSM agent lost during the revert, back 14 min later",
        change=_lost({"set_ping_status": {"instance": "helper", "status": "Online"}, "at": 900}),
    ),
    # Someone stops or terminates the helper itself: EC2's state-change event fails the
    # waiting Revert at once (HelperLost), not at the command's or the state's timeout.
    Case(
        id="helper-stopped-mid-revert",
        step="Revert the shadow copies",
        tried="someone stops the helper during the revert",
        injected="stopping lasts 60 s (modelled)",
        change={
            **REVERT_RUNNING,
            "faults": [{"windows": "Revert", "helper_lost": "stop", "after_seconds": 30}],
        },
        **_failed(r"HelperLost: helper i-\w+ is stopping", commands={"Inspect": 1, "Revert": 1}),
        took=(0, 400),
    ),
    Case(
        id="helper-terminated-mid-revert",
        step="Revert the shadow copies",
        tried="someone terminates the helper during the revert",
        injected="shutting-down lasts 30 s (modelled), then EC2 detaches our volume",
        change={
            **REVERT_RUNNING,
            "faults": [{"windows": "Revert", "helper_lost": "terminate", "after_seconds": 30}],
        },
        **_failed(
            r"HelperLost: helper i-\w+ is shutting-down", commands={"Inspect": 1, "Revert": 1}
        ),
        took=(0, 400),
    ),
    Case(
        id="fleet-helper-terminated",
        step="Revert the shadow copies",
        tried="someone terminates the fleet's helper during the revert",
        change={
            **_fleet({"windows": "Revert", "helper_lost": "terminate", "after_seconds": 30}),
            **REVERT_RUNNING,
        },
        **_failed(
            r"HelperLost: helper i-\w+ is shutting-down", commands={"Inspect": 1, "Revert": 1}
        ),
    ),
    # -- Detach the volume: ec2:DetachVolume ----------------------------------------------
    Case(
        id="detach-throttled",
        step="Detach the volume",
        tried=THROTTLED,
        change={"faults": [throttled("ec2:DetachVolume")]},
        retried_by="DetachVolumeFunction",
    ),
    Case(
        id="detach-refused",
        step="Detach the volume",
        tried=PERMANENT,
        change={"faults": [refused("ec2:DetachVolume", EC2_DENIED)]},
        **_failed(EC2_DENIED),
    ),
    Case(
        id="detach-slow",
        step="Is the volume detached?",
        tried=TIMEOUT + "detaching past the wait's bound",
        change={"faults": [{"timing": "detach_seconds", "seconds": 1000}]},
        **_failed("WaitTimedOut.*volume_detached"),
    ),
    Case(
        id="detach-stuck",
        step="Is the volume detached?",
        tried=TIMEOUT + "detaching for good",
        change={"faults": [{"timing": "detach_seconds", "seconds": 4000}]},
        **_failed("WaitTimedOut", volume_left="in-use"),
    ),
    # -- Give back the helper: dynamodb:UpdateItem (after the turn's five) ----------------
    Case(
        id="give-back-throttled",
        step="Give back the helper",
        tried=THROTTLED,
        change={"faults": [throttled("dynamodb:UpdateItem", function=GIVE_BACK)]},
        retried_by="GiveBackTurnFunction",
    ),
    Case(
        id="give-back-refused",
        step="Give back the helper",
        tried=PERMANENT,
        change={"faults": [refused("dynamodb:UpdateItem", DENIED, function=GIVE_BACK)]},
        **_failed(DENIED),
    ),
    # -- Snapshot the consistent volume: ec2:DescribeSnapshots, ec2:CreateSnapshot --------
    Case(
        id="snapshot-throttled",
        step="Snapshot the consistent volume",
        tried=THROTTLED,
        change={"faults": [throttled("ec2:CreateSnapshot")]},
        retried_by="SnapshotVolumeFunction",
    ),
    Case(
        id="snapshot-throttled-long",
        step="Snapshot the consistent volume",
        tried=THROTTLED_LONG,
        change={"faults": [throttled_spell("ec2:CreateSnapshot", LONG_SPELL)]},
        retried_by="SnapshotVolumeFunction",
        retries=LONG_SPELL,
    ),
    Case(
        id="snapshot-refused",
        step="Snapshot the consistent volume",
        tried=PERMANENT,
        change={"faults": [refused("ec2:CreateSnapshot", EC2_DENIED)]},
        **_failed(EC2_DENIED),
    ),
    Case(
        id="snapshot-lookup-refused",
        step="Snapshot the consistent volume",
        tried=PERMANENT,
        change={"faults": [refused("ec2:DescribeSnapshots", EC2_DENIED, skip=1)]},
        **_failed(EC2_DENIED),
    ),
    # -- Is the snapshot complete?: ec2:DescribeSnapshots ---------------------------------
    Case(
        id="snapshot-state-throttled",
        step="Is the snapshot complete?",
        tried=THROTTLED,
        # Its completion event lost, the task times out into this poll (the hourly look
        # also calls DescribeSnapshots, hence the function).
        injected="the consistent snapshot's event lost",
        change={
            "faults": [
                throttled("ec2:DescribeSnapshots", function="SnapshotStateFunction"),
                SNAPSHOT_EVENT_LOST,
            ]
        },
        retried_by="SnapshotStateFunction",
    ),
    Case(
        id="snapshot-state-refused",
        step="Is the snapshot complete?",
        tried=PERMANENT,
        injected="the consistent snapshot's event lost",
        change={
            "faults": [
                refused("ec2:DescribeSnapshots", EC2_DENIED, function="SnapshotStateFunction"),
                SNAPSHOT_EVENT_LOST,
            ]
        },
        **_failed(EC2_DENIED, snapshot_deleted=DELETED),
    ),
    Case(
        id="snapshot-slow",
        step="Is the snapshot complete?",
        tried=TIMEOUT + "pending past the wait's 24 h",
        change={"faults": [{"timing": "snapshot_seconds", "seconds": 100000}]},
        **_failed("WaitTimedOut.*snapshot_completed", snapshot_deleted=DELETED_PENDING),
    ),
    Case(
        id="snapshot-error",
        step="Is the snapshot complete?",
        tried="the consistent snapshot ends in the error state",
        change={"faults": [{"outcome": "snapshot_error"}]},
        **_failed(
            "VolumeFailed.*consistent snapshot",
            snapshot_deleted="error",
        ),
    ),
    # -- Boot-test the system drive (BootTest=Weekly): ec2:RunInstances and the swap -------
    Case(
        id="boot-test-throttled",
        step="Boot-test the system drive",
        tried=THROTTLED,
        injected="BootTest=Weekly, a snapshot of the system drive C:; then booted",
        change=_boot_test(throttled("ec2:RunInstances", function="BootTestFunction")),
        retried_by="BootTestFunction",
        volumes_created=2,  # the temporary volume and the boot test's root
    ),
    Case(
        id="boot-test-refused",
        step="Boot-test the system drive",
        tried=PERMANENT,
        injected="BootTest=Weekly; the clean-up tags boot-test=failed on the consistent"
        " snapshot and alerts; the restore stays verified",
        change=_boot_test(refused("ec2:RunInstances", EC2_DENIED, function="BootTestFunction")),
        alert=True,
    ),
    Case(
        id="boot-test-never-boots",
        step="Boot-test the system drive",
        tried=TIMEOUT + "the clone never boots past HelperBootMinutes",
        injected="BootTest=Weekly, HelperBootMinutes 20; boot-test=failed, alerted, the clone"
        " terminated and its root deleted; the restore stays verified",
        change=_boot_test(never_online=1),
        alert=True,
        volumes_created=2,
    ),
    # -- Delete the temporary volume: ec2:DeleteVolume -------------------------------------
    Case(
        id="delete-throttled",
        step="Delete the temporary volume",
        tried=THROTTLED,
        change={"faults": [throttled("ec2:DeleteVolume")]},
        retried_by="DeleteVolumeFunction",
    ),
    Case(
        id="delete-refused",
        step="Delete the temporary volume",
        tried=PERMANENT,
        change={"faults": [refused("ec2:DeleteVolume", EC2_DENIED)]},
        **_failed(EC2_DENIED, snapshot_deleted=DELETED),
    ),
    # -- Record the verdict: ec2:CreateTags -----------------------------------------------
    Case(
        id="record-throttled",
        step="Record the verdict",
        tried=THROTTLED,
        change={"faults": [throttled("ec2:CreateTags")]},
        retried_by="RecordVerdictFunction",
    ),
    Case(
        id="record-refused",
        step="Record the verdict",
        tried=PERMANENT,
        change={"faults": [refused("ec2:CreateTags", EC2_DENIED)]},
        **_failed(EC2_DENIED, snapshot_deleted=DELETED),
    ),
    # -- Bad input: malformed events and on-demand inputs ---------------------------------
    Case(
        id="input-not-a-snapshot-id",
        step="Read the request",
        tried="on-demand input whose snapshot_id is no snapshot ID",
        change=_on_demand({"snapshot_id": "snap-nothex"}),
        **_malformed("InvalidRequest"),
    ),
    Case(
        id="input-unknown-field",
        step="Read the request",
        tried="on-demand input with an unknown field",
        change=_on_demand({"snapshot": "${snapshot:snap}"}),
        **_malformed("InvalidRequest"),
    ),
    Case(
        id="input-keep-volume-not-boolean",
        step="Read the request",
        tried='on-demand input with keep_volume "yes"',
        change=_on_demand({"snapshot_id": "${snapshot:snap}", "keep_volume": "yes"}),
        **_malformed("InvalidRequest"),
    ),
    Case(
        id="input-helper-not-an-instance-id",
        step="Read the request",
        tried="on-demand input whose helper_instance_id is no instance ID",
        change=_on_demand({"snapshot_id": "${snapshot:snap}", "helper_instance_id": "helper"}),
        **_malformed("InvalidRequest"),
    ),
    Case(
        id="event-volume-arn",
        step="Read the request",
        tried="snapshot event naming a volume ARN",
        change=_event(
            SINGLE,
            {
                "event": "createSnapshot",
                "result": "succeeded",
                "snapshot_id": "${volume_arn:web1.D}",
            },
        ),
        **_malformed("InvalidRequest"),
    ),
    Case(
        id="event-no-snapshots-list",
        step="Read the request",
        tried="multi-volume event without a snapshots list",
        change=_event(MULTI, {"event": "createSnapshots", "result": "succeeded"}),
        **_malformed("InvalidRequest"),
    ),
    Case(
        id="event-all-failed",
        step="Read the request",
        tried="multi-volume event whose every snapshot failed",
        change={"steps": [{"deliver": {"snapshots": ["snap"], "failed": ["snap"]}}]},
        **_malformed("InvalidRequest"),
    ),
    # -- Bad input: snapshots -------------------------------------------------------------
    Case(
        id="snapshot-unknown",
        step="Resolve the snapshot",
        tried="on-demand restore of a snapshot that does not exist",
        change=_on_demand({"snapshot_id": "snap-0123456789abcdef0"}),
        **_nothing_made("SnapshotNotFound", tagged=False),
    ),
    Case(
        id="snapshot-foreign",
        step="Resolve the snapshot",
        tried="copySnapshot event for another account's snapshot",
        change=_event(
            SINGLE,
            {
                "event": "copySnapshot",
                "result": "succeeded",
                "snapshot_id": "arn:aws:ec2:${region}:210987654321:snapshot/snap-0fedcba987654321f",
            },
        ),
        **_nothing_made("SnapshotNotFound", tagged=False),
    ),
    Case(
        id="snapshot-not-vss",
        step="Resolve the snapshot",
        tried="event for a snapshot without the VSS tag",
        change={"snapshots": {"snap": {"kind": "crash"}}},
        verdict="skipped",
        reason=NOT_VSS,
        tagged=False,
        volumes_created=0,
    ),
    Case(
        id="snapshot-own-output",
        step="Resolve the snapshot",
        tried="event for a consistent snapshot vss-restore made",
        change={"snapshots": {"snap": {"tags": {"vss-restore:resource": "consistent-snapshot"}}}},
        verdict="skipped",
        reason=OWN_OUTPUT,
        tagged=False,
        volumes_created=0,
    ),
    Case(
        id="snapshot-error-state",
        step="Resolve the snapshot",
        tried="on-demand restore of a snapshot in the error state",
        change={
            "snapshots": {"snap": {"state": "error"}},
            "steps": [{"start": {"snapshot": "snap"}}],
        },
        **_nothing_made("SnapshotUnusable", tagged=False),
    ),
    # -- Bad input: the helper ------------------------------------------------------------
    Case(
        id="helper-stopped",
        step="Prepare the helper",
        tried="helper stopped",
        change=_helper(state="stopped"),
        **_nothing_made("HelperNotUsable.*stopped"),
    ),
    Case(
        id="helper-not-windows",
        step="Prepare the helper",
        tried="helper not Windows",
        change=_helper(platform="linux"),
        **_nothing_made("HelperNotUsable.*not a Windows instance"),
    ),
    Case(
        id="helper-offline",
        step="Prepare the helper",
        tried="helper's SSM agent ConnectionLost",
        change=_helper(ssm={"ping_status": "ConnectionLost"}),
        **_nothing_made("HelperNotUsable.*ConnectionLost"),
    ),
    Case(
        id="helper-unmanaged",
        step="Prepare the helper",
        tried="helper not managed by SSM",
        change=_helper(ssm=False),
        **_nothing_made("HelperNotUsable.*not registered with SSM"),
    ),
    Case(
        id="helper-untagged",
        step="Prepare the helper",
        tried="helper without the tag vss-restore:helper=true",
        change=_helper(helper=False),
        **_nothing_made("HelperNotUsable.*not tagged"),
    ),
    # -- The helper may not be a backed-up server, nor the snapshot's own instance (#13) ----
    Case(
        id="helper-none-configured",
        step="Prepare the helper",
        tried="HelperMode=named without HelperInstanceIds, no helper in the request",
        change={"parameters": {"HelperInstanceIds": ""}},
        **_nothing_made("HelperNotUsable.*no helper configured: set HelperInstanceIds"),
    ),
    Case(
        id="helper-backed-up",
        step="Prepare the helper",
        tried="the stack's helper is backed up itself (tagged ConsistentSnapshot=WindowsVSS)",
        change=_helper(tags={"ConsistentSnapshot": "WindowsVSS"}),
        **_nothing_made("HelperNotUsable.*is backed up itself"),
    ),
    Case(
        id="helper-is-the-source",
        step="Prepare the helper",
        tried="the stack's helper is the backed-up instance (web1)",
        change={
            "parameters": {"HelperInstanceIds": "${instance:web1}"},
            "instances": {"web1": {"helper": True}},
        },
        **_nothing_made(
            "HelperNotUsable.*is the backed-up instance itself.*set AllowSourceAsHelper=true"
        ),
    ),
    Case(
        id="helper-is-the-source-allowed",
        step="Prepare the helper",
        tried="the backed-up instance (web1) as its own helper, AllowSourceAsHelper=true",
        change={
            "parameters": {"HelperInstanceIds": "", "AllowSourceAsHelper": "true"},
            "instances": {"web1": {"helper": True}},
        },
    ),
    Case(
        id="helper-zone-unusable",
        step="Create the volume",
        tried="the helper's Availability Zone takes no volume (CreateVolume Unsupported)",
        change={"faults": [refused("ec2:CreateVolume", "Unsupported")]},
        **_nothing_made("Unsupported"),
    ),
    Case(
        id="helper-no-device",
        step="Prepare the helper",
        tried="helper with every device name xvdf-xvdz taken",
        injected="helper with a volume at each of xvdf-xvdz",
        change=_helper(volumes=WINDOWS_DEVICES),
        **_nothing_made("NoFreeDevice"),
    ),
    # -- Bad input: an encrypted snapshot whose key we cannot use -------------------------
    *(
        Case(
            id=f"key-{state.lower()}",
            step="Create the volume",
            tried=f"snapshot encrypted with a KMS key {words}",
            key=state,
            **_nothing_made(f"KeyNotUsable.*{pattern}"),
        )
        for state, words, pattern in (
            ("Disabled", "that is disabled", "Disabled"),
            ("PendingDeletion", "pending deletion", "PendingDeletion"),
            ("missing", "we cannot see", "encrypted with"),
        )
    ),
    # -- Duplicates and a busy helper -----------------------------------------------------
    Case(
        id="duplicate-storm",
        step="Claim the snapshot",
        tried="the same event 20 times at once",
        change={
            "steps": [{"deliver": {"snapshot": "snap", "event": "createSnapshot"}, "times": 20}]
        },
        reason=f"{BEING_RESTORED}|{ALREADY_VERIFIED}",
        counts={"verified": 1, "skipped": 19},
        peak=1,
    ),
    Case(
        id="ten-snapshots-one-turn",
        step="Take a turn on the helper",
        tried="10 snapshots at once, one helper, HelperConcurrency 1",
        injected=TEN,
        change=_ten(1),
        counts={"verified": 10},
        volumes_created=10,
        peak=1,
    ),
    Case(
        id="ten-snapshots-hand-over-lost",
        step="Take a turn on the helper",
        tried="10 snapshots, one turn; the first hand-over is lost (its timeout retry recovers)",
        injected=TEN,
        change={
            **_ten(1),
            "faults": [
                {
                    "action": "stepfunctions:SendTaskSuccess",
                    "error": "TaskTimedOut",
                    "times": 1,
                    "skip": 1,
                }
            ],
        },
        counts={"verified": 10},
        volumes_created=10,
        peak=1,
    ),
    Case(
        id="ten-snapshots-two-turns",
        step="Take a turn on the helper",
        tried="10 snapshots at once, one helper, HelperConcurrency 2",
        injected=TEN,
        change=_ten(2),
        counts={"verified": 10},
        volumes_created=10,
        peak=2,
    ),
]
