"""The expectation table: every sample in events/, in the order one restore calls them.

Each step invokes one function with one sample (its fake IDs replaced, see seeding.py),
then checks the output (or the named error), learns the IDs later samples name, lets
virtual time pass where AWS or Windows would take time, and may check the account itself.

Expectations are written in the samples' own vocabulary: a fake ID in an expected value
stands for what replaces it. Dicts must contain the keys given (others may exist); lists
must match item by item. Every sample ends well on this path; a step for a sample meant to
fail would give `error="TheErrorName"` instead of `expect`.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.seeding import (
    DISK_IDENTITY,
    HELPER,
    SHADOW_COPY,
    SHADOW_SET,
    SNAPSHOT,
    SOURCE_VOLUME,
    LocalAccount,
)

# The fake IDs the plan learns from an earlier invocation's output.
VOLUME = "vol-0123456789abcdef0"  # CreateVolume's temporary volume
COMMAND = "2f9d1c4e-8b7a-4c3d-9e2f-1a2b3c4d5e6f"  # the Inspect command
CONSISTENT = "snap-0fedcba9876543210"  # SnapshotVolume's consistent snapshot
SECOND_SNAPSHOT = "snap-0b2c3d4e5f6071829"  # the multi-volume event's other snapshot


@dataclass(frozen=True)
class Like:
    """A string matching this pattern (for what moto makes: IDs, command IDs)."""

    pattern: str

    def __repr__(self) -> str:
        return f"like /{self.pattern}/"


@dataclass(frozen=True)
class Seeded:
    """What the seeding made under this name (`instance:web1`, `orphan`)."""

    name: str


@dataclass(frozen=True)
class Contains:
    text: str

    def __repr__(self) -> str:
        return f"containing {self.text!r}"


VOLUME_ID = Like(r"^vol-[0-9a-f]{17}$")
SNAPSHOT_ID = Like(r"^snap-[0-9a-f]{17}$")
COMMAND_ID = Like(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

Check = Callable[[LocalAccount, dict[str, str]], list[str]]


@dataclass(frozen=True)
class Step:
    function: str  # logical ID in template.yaml
    sample: str  # events/<sample>.json
    means: str  # what the sample stands for in the seeded account
    expect: Any = None  # what the output must hold
    error: str = ""  # or: the named error the function must raise
    learn: dict[str, str] = field(default_factory=dict)  # fake ID -> output key
    remember: dict[str, str] = field(default_factory=dict)  # name -> output key, for checks
    then_advance: float = 0.0  # virtual seconds that pass afterwards
    check: Check | None = None  # the account afterwards: what is wrong, if anything


# -- checks of the account after a step ----------------------------------------------------
def _temporary_volume_created(account: LocalAccount, seen: dict[str, str]) -> list[str]:
    volume = account.volume(seen[VOLUME]) or {}
    tags = {t["Key"]: t["Value"] for t in volume.get("Tags", [])}
    wanted = {
        "SnapshotId": seen[SNAPSHOT],
        "AvailabilityZone": "us-east-1a",
        "vss-restore:resource": "temporary-volume",
        "vss-restore:source-snapshot": seen[SNAPSHOT],
    }
    found = {**volume, **tags}
    return [
        f"volume {k} is {found.get(k)!r}, not {v!r}" for k, v in wanted.items() if found.get(k) != v
    ]


def _attached_to_helper(account: LocalAccount, seen: dict[str, str]) -> list[str]:
    volume = account.volume(seen[VOLUME]) or {}
    if any(a.get("InstanceId") == seen[HELPER] for a in volume.get("Attachments", [])):
        return []
    return [f"{seen[VOLUME]} is not attached to the helper: {volume.get('Attachments')}"]


def _no_turn_kept(account: LocalAccount, seen: dict[str, str]) -> list[str]:
    """A turn whose task cannot be told stays free, and the dead token is dropped. The place
    in line stays, for the task's retry with a new token (a dead execution's release frees
    it)."""
    item = account.ledger_item(f"helper#{seen[HELPER]}")
    kept = {field: sorted((item.get(field) or {}).get("M", {})) for field in ("holders", "tokens")}
    return [f"the helper's {field}: {names}" for field, names in kept.items() if names]


def _revert_and_check_ran(account: LocalAccount, seen: dict[str, str]) -> list[str]:
    """The simulated Windows helper really reverted the backup's shadow copy, and the check
    found the disk clean: the plan the samples carry fits the disk that was restored."""
    problems = []
    for name in ("revert", "check"):
        invocation = account.ssm.get_command_invocation(
            CommandId=seen[f"@{name}"], InstanceId=seen[HELPER]
        )
        lines = invocation["StandardOutputContent"].strip().splitlines()
        report = json.loads(lines[-1]) if lines else {}
        if invocation["Status"] != "Success" or not report.get("ok"):
            problems.append(
                f"the {name} command ended {invocation['Status']}: "
                f"{report.get('error') or invocation['StandardErrorContent'].strip()}"
            )
        elif name == "revert" and seen[SHADOW_COPY] not in json.dumps(report):
            problems.append(f"the revert report does not name {seen[SHADOW_COPY]}: {report}")
        elif name == "check" and report.get("passed") is not True:
            problems.append(f"the check did not pass: {report}")
    return problems


def _detached(account: LocalAccount, seen: dict[str, str]) -> list[str]:
    volume = account.volume(seen[VOLUME]) or {}
    if volume.get("State") == "available" and not volume.get("Attachments"):
        return []
    return [f"{seen[VOLUME]} is {volume.get('State')}, attachments {volume.get('Attachments')}"]


def _consistent_snapshot_tagged(account: LocalAccount, seen: dict[str, str]) -> list[str]:
    tags = account.snapshot_tags(seen[CONSISTENT])
    wanted = {
        "vss-restore:resource": "consistent-snapshot",
        "vss-restore:source-snapshot": seen[SNAPSHOT],
        "vss-restore:shadow-copy-id": seen[SHADOW_COPY],
    }
    return [
        f"consistent snapshot tag {k} is {tags.get(k)!r}, not {v!r}"
        for k, v in wanted.items()
        if tags.get(k) != v
    ]


def _volume_gone(account: LocalAccount, seen: dict[str, str]) -> list[str]:
    volume = account.volume(seen[VOLUME])
    return [] if volume is None else [f"{seen[VOLUME]} still exists ({volume.get('State')})"]


def _verdict(status: str, consistent: str) -> Check:
    def check(account: LocalAccount, seen: dict[str, str]) -> list[str]:
        tags = account.snapshot_tags(seen[SNAPSHOT])
        wanted = {
            "vss-restore:status": status,
            "vss-restore:consistent-snapshot": seen.get(consistent, consistent),
        }
        return [
            f"source snapshot tag {k} is {tags.get(k)!r}, not {v!r}"
            for k, v in wanted.items()
            if tags.get(k) != v
        ]

    return check


def _failed_and_alerted(account: LocalAccount, seen: dict[str, str]) -> list[str]:
    problems = _verdict("failed", "none")(account, seen)
    if not any(seen[SNAPSHOT] in a["message"] for a in account.alerts()):
        problems.append("no alert on the alert topic names the snapshot")
    return problems


def _orphan_alerted(account: LocalAccount, seen: dict[str, str]) -> list[str]:
    if any(account.orphan_volume in a["message"] for a in account.alerts()):
        return []
    return [f"no alert names the orphan volume {account.orphan_volume}"]


def _unverified_alerted(account: LocalAccount, seen: dict[str, str]) -> list[str]:
    web1 = account.seeded("instance:web1")
    if any(web1 in a["message"] and "restore failed" in a["message"] for a in account.alerts()):
        return []
    return [f"no alert names {web1} as an instance whose restore failed"]


PLAN: tuple[Step, ...] = (
    Step(
        "ReadRequestFunction",
        "on-demand",
        "an operator's restore of last night's D: snapshot on the helper",
        expect={"restores": [{"snapshot_id": SNAPSHOT, "helper_instance_id": HELPER}]},
    ),
    Step(
        "ReadRequestFunction",
        "snapshot-completed",
        "EBS's event for last night's D: snapshot",
        expect={"restores": [{"snapshot_id": SNAPSHOT, "helper_instance_id": ""}]},
    ),
    Step(
        "ReadRequestFunction",
        "multi-volume-snapshots-completed",
        "a CreateSnapshots event for it and a second snapshot",
        expect={"restores": [{"snapshot_id": SNAPSHOT}, {"snapshot_id": SECOND_SNAPSHOT}]},
    ),
    Step(
        "ResolveSnapshotFunction",
        "resolve_snapshot",
        "the backup's tags read: restore, to the recorded shadow copy",
        expect={
            "action": "restore",
            "snapshot_id": SNAPSHOT,
            "source_volume_id": SOURCE_VOLUME,
            "instance_id": Seeded("instance:web1"),
            "shadow_copy_id": SHADOW_COPY,
            "shadow_set_id": SHADOW_SET,
        },
    ),
    Step(
        "ClaimSnapshotFunction",
        "claim_snapshot",
        "the first claim of the snapshot in the ledger",
        expect={"claimed": True, "reason": ""},
    ),
    Step(
        "PrepareHelperFunction",
        "prepare_helper",
        "the stack's helper (HelperInstanceIds): not the backed-up instance, not backed up, "
        "running, Windows, SSM online",
        expect={"instance_id": HELPER, "availability_zone": "us-east-1a"},
    ),
    Step(
        "HelperOnlineFunction",
        "helper_online",
        "the stack's helper, running and SSM Online: ready, no boot to wait for",
        expect={"instance_id": HELPER, "ready": True},
    ),
    Step(
        "RetireHelpersFunction",
        "retire_helpers",
        "the fleet's five-minute schedule on a stack with HelperMode=named: nothing to retire",
        expect={"retired": {}},
    ),
    Step(
        "TakeTurnFunction",
        "take_turn",
        "the helper's only turn (HelperConcurrency 1) is free, but the sample's token is no "
        "waiting task's: Step Functions answers InvalidToken, so the turn is not kept",
        expect={"taken": False},
        check=_no_turn_kept,
    ),
    Step(
        "CreateVolumeFunction",
        "create_volume",
        "the temporary volume from the snapshot, in the helper's zone",
        expect={"volume_id": VOLUME_ID},
        learn={VOLUME: "volume_id"},
        then_advance=10,
        check=_temporary_volume_created,
    ),
    Step(
        "VolumeStateFunction",
        "volume_state",
        "that volume, available now",
        expect={"ready": True},
    ),
    Step(
        "AttachVolumeFunction",
        "attach_volume",
        "attach it at the first free device name",
        expect={"device": "xvdf"},
        then_advance=10,
        check=_attached_to_helper,
    ),
    Step(
        "RunDiskToolFunction",
        "run_disk_tool-inspect",
        "Inspect the new disk on the helper",
        expect={"command_id": COMMAND_ID},
        learn={COMMAND: "command_id"},
        then_advance=60,
    ),
    Step(
        "DiskToolResultFunction",
        "disk_tool_result",
        "the Inspect report: the disk found by serial, the backup's shadow copy on it",
        expect={
            "ready": True,
            "report": {
                "ok": True,
                "action": "Inspect",
                "volume_id": VOLUME,
                "disk": {
                    "number": 2,
                    "serial_number": "vol0123456789abcdef0_00000001.",
                    "partition_style": "GPT",
                    "identity": DISK_IDENTITY,
                    "is_system": False,
                },
                "shadow_copies": [{"id": SHADOW_COPY, "set_id": SHADOW_SET}],
            },
        },
    ),
    Step(
        "CommandFinishedFunction",
        "command_finished",
        "SSM's event for that Inspect command: no task waits (this sample sent no token)",
        expect={"command_id": COMMAND, "outcome": "no task waits for it"},
    ),
    Step(
        "HelperLostFunction",
        "helper_lost",
        "EC2's event for the helper stopped: no task waits on a command there (one Query)",
        expect={"instance_id": HELPER, "state": "stopped", "waits": {}},
    ),
    Step(
        "PlanRevertFunction",
        "plan_revert",
        "the sample's inspection report: revert the recorded shadow copy",
        expect={
            "disk_number": 2,
            "disk_identity": DISK_IDENTITY,
            "shadow_copy_ids": [SHADOW_COPY],
            "rule": "recorded-shadow-copy-id",
        },
    ),
    Step(
        "RunDiskToolFunction",
        "run_disk_tool-revert",
        "Revert exactly that shadow copy on disk 2",
        expect={"command_id": COMMAND_ID},
        remember={"@revert": "command_id"},
        then_advance=200,
    ),
    Step(
        "RunDiskToolFunction",
        "run_disk_tool-check",
        "Check the reverted disk read-only",
        expect={"command_id": COMMAND_ID},
        remember={"@check": "command_id"},
        then_advance=120,
        check=_revert_and_check_ran,
    ),
    Step(
        "DetachVolumeFunction",
        "detach_volume",
        "detach our volume from the helper",
        expect={},
        then_advance=10,
        check=_detached,
    ),
    Step(
        "SnapshotVolumeFunction",
        "snapshot_volume",
        "the consistent snapshot of the reverted volume",
        expect={"snapshot_id": SNAPSHOT_ID},
        learn={CONSISTENT: "snapshot_id"},
        then_advance=240,
        check=_consistent_snapshot_tagged,
    ),
    Step(
        "SnapshotStateFunction",
        "snapshot_state",
        "that snapshot, completed now",
        expect={"ready": True},
    ),
    Step(
        "BootTestFunction",
        "boot_test",
        "the boot test's step on this stack (BootTest=Never): refused, the workflow never calls it",
        error="InvalidRequest",
    ),
    Step(
        "BootTestFunction",
        "clean_up_boot_test",
        "the boot test's clean-up after a test already recorded: nothing of it left to remove",
        expect={"done": True, "result": "skipped"},
    ),
    Step(
        "SnapshotFailedFunction",
        "snapshot_failed",
        "a failed-snapshot event for it: no task waits (this sample sent no token)",
        expect={"snapshot_id": CONSISTENT, "outcome": "no task waits for it"},
    ),
    Step(
        "DeleteVolumeFunction",
        "delete_volume",
        "delete the temporary volume (tagged ours)",
        expect={},
        check=_volume_gone,
    ),
    Step(
        "GiveBackTurnFunction",
        "give_back_turn",
        "give the helper's turn back",
        expect={},
    ),
    Step(
        "RecordVerdictFunction",
        "record_verdict",
        "the verdict on the source snapshot: verified",
        expect={
            "snapshot_id": SNAPSHOT,
            "status": "verified",
            "consistent_snapshot": CONSISTENT,
            "shadow_copies_reverted": [SHADOW_COPY],
            "rule": "recorded-shadow-copy-id",
        },
        check=_verdict("verified", CONSISTENT),
    ),
    Step(
        "FinishFunction",
        "finish",
        "the execution's verdicts: all verified",
        expect={"verdicts": [{"snapshot_id": SNAPSHOT, "status": "verified"}]},
    ),
    Step(
        "CleanUpFunction",
        "clean_up",
        "the failure path for the same restore (a revert that failed): tag failed, alert",
        expect={"snapshot_id": SNAPSHOT, "status": "failed", "reason": Contains("RevertFailed")},
        check=_failed_and_alerted,
    ),
    Step(
        "ReleaseExecutionFunction",
        "release_execution",
        "the execution aborted after its cleanup: nothing left to release",
        expect={"status": "ABORTED", "released": [], "volumes_removed": [], "left": []},
    ),
    Step(
        "ReconcileFunction",
        "reconcile",
        "the daily run: no snapshot without a verdict, one orphan volume reported",
        expect={
            "restores_started": [],
            "orphans": [Seeded("orphan")],
            "orphans_deleted": [],
        },
        check=_orphan_alerted,
    ),
    Step(
        "RetentionFunction",
        "apply_retention",
        "the daily retention, a dry run (the default): one night kept, nothing expired",
        expect={"dry_run": True, "expired": [], "deleted": []},
    ),
    Step(
        "StartReverificationsFunction",
        "start_reverifications",
        "the weekly re-verification: each drive's only backup is its newest, nothing drawn",
        expect={"window_days": 30, "picked": [], "started": []},
    ),
    Step(
        "FindUnverifiedInstancesFunction",
        "find_unverified_instances",
        "the hourly look: web1 (VSS-tagged, launched two days ago) has D:'s restore failed",
        expect={
            "unverified_instances": [
                {"instance_id": Seeded("instance:web1"), "why": "restore failed"}
            ],
            "alerted": True,
        },
        check=_unverified_alerted,
    ),
)


# -- matching ---------------------------------------------------------------------------
def resolve(expected: Any, account: LocalAccount) -> Any:
    """The expectation with fake IDs replaced and seeded names looked up."""
    if isinstance(expected, str):
        return account.rewrite(expected)
    if isinstance(expected, Seeded):
        return account.orphan_volume if expected.name == "orphan" else account.seeded(expected.name)
    if isinstance(expected, dict):
        return {key: resolve(value, account) for key, value in expected.items()}
    if isinstance(expected, list):
        return [resolve(value, account) for value in expected]
    return expected


def mismatches(actual: Any, expected: Any, path: str = "output") -> list[str]:
    if isinstance(expected, Like):
        ok = isinstance(actual, str) and re.search(expected.pattern, actual) is not None
        return [] if ok else [f"{path} is {actual!r}, not {expected!r}"]
    if isinstance(expected, Contains):
        ok = isinstance(actual, str) and expected.text in actual
        return [] if ok else [f"{path} is {actual!r}, not {expected!r}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path} is {actual!r}, not an object"]
        problems = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{path}.{key} is missing")
            else:
                problems.extend(mismatches(actual[key], value, f"{path}.{key}"))
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path} is {actual!r}, not {len(expected)} item(s) like {expected!r}"]
        return [
            problem
            for index, (item, wanted) in enumerate(zip(actual, expected, strict=True))
            for problem in mismatches(item, wanted, f"{path}[{index}]")
        ]
    return [] if actual == expected else [f"{path} is {actual!r}, not {expected!r}"]
