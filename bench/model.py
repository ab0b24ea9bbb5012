"""The latency model and the prices the bench uses, and what they predict without the workflow.

Every figure is here once, with where it comes from (FIELD-NOTES §7 and AWS price pages);
the scenarios pass the latencies to the simulator as `timing`, so a change of the
simulator's defaults cannot move the bench's figures silently.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

# Seconds on the virtual clock, by simulator timing key.
LATENCIES: dict[str, float] = {
    "volume_available_seconds": 2.0,
    "attach_seconds": 3.0,
    "detach_seconds": 3.0,
    "disk_arrival_seconds": 1.0,
    "invocation_visible_seconds": 1.0,
    "command_delivery_seconds": 1.0,
    "inspect_seconds": 20.0,
    "revert_seconds": 120.0,
    "check_seconds": 60.0,
    "snapshot_seconds": 180.0,
    "event_delivery_seconds": 1.0,
    "lambda_seconds": 0.2,
}

# Why each figure, in the words docs/performance.md and results.json repeat.
WHY: dict[str, str] = {
    "volume_available_seconds": "CreateVolume -> available: ~1.5 s median, ~4 s p99 "
    "(EBS CSI driver measurements)",
    "attach_seconds": "AttachVolume: 1-4 s",
    "detach_seconds": "DetachVolume: 1-4 s",
    "disk_arrival_seconds": "disk showing up in Windows after `attached`: no published "
    "figure (assumed)",
    "invocation_visible_seconds": "SendCommand -> invocation visible: 0.5-1 s",
    "command_delivery_seconds": "SendCommand -> the agent starts it: 0.5-1 s, plus "
    "PowerShell start 0.2-0.6 s",
    "inspect_seconds": "Get-Disk and the shadow copy listing of one disk: no published "
    "figure (assumed)",
    "revert_seconds": "diskshadow revert: no published figure; the issue's 2 min and 30 min",
    "check_seconds": "Repair-Volume -Scan of a restored volume: no published figure "
    "(assumed; grows with the file count)",
    "snapshot_seconds": "CreateSnapshot -> completed: ~3 min for a small incremental; the "
    "consistent snapshot is incremental over the source snapshot it was restored from",
    "event_delivery_seconds": "EBS event delivery: no published figure (assumed)",
    "lambda_seconds": "a warm Python handler making 1-3 AWS calls (the simulator's "
    "model; a handler's own waits come on top, on the virtual clock; Lambda cold start "
    "with Powertools ~145 ms p50 comes on top, rarely)",
}

# The two reverts: a realistic short one and a long one.
SHORT_REVERT_SECONDS = 120.0
LONG_REVERT_SECONDS = 1800.0
# A data volume as the simulator's instances have it by default (GiB).
DATA_VOLUME_GIB = 50

# botocore's waiters (VolumeAvailable, VolumeInUse, SnapshotCompleted) poll every 15 s.
WAITER_DELAY_SECONDS = 15.0


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices (the issue's figures)."""

    per_transition: float = 0.025 / 1000  # Step Functions Standard
    per_gb_second: float = 0.0000133334  # Lambda arm64
    per_request: float = 0.20 / 1_000_000  # Lambda requests
    per_gb_month: float = 0.08  # gp3 storage
    hours_per_month: float = 730.0


PRICES = Prices()


def timing(**overrides: float) -> dict[str, float]:
    """The model, with some keys changed (revert_seconds for the long revert)."""
    unknown = set(overrides) - set(LATENCIES)
    if unknown:
        raise KeyError(f"not a latency of the model: {', '.join(sorted(unknown))}")
    return {**LATENCIES, **overrides}


def _command(t: Mapping[str, float], run_key: str) -> float:
    """A disk tool command: the agent picks it up, then it runs."""
    return t["command_delivery_seconds"] + t[run_key]


def operations(t: Mapping[str, float], *, check: bool = True) -> list[tuple[str, float]]:
    """The AWS and Windows operations on one restore's critical path, in order, with their
    modelled latencies: what a restore would take if the orchestration cost nothing.

    The disk arrives while the Inspect command is being delivered (both start once the
    attach is done), so only the longer of the two counts.
    """
    ops = [
        ("volume available", t["volume_available_seconds"]),
        ("attach", t["attach_seconds"]),
        (
            "disk arrival / command delivery",
            max(t["disk_arrival_seconds"], t["command_delivery_seconds"]),
        ),
        ("inspect", t["inspect_seconds"]),
        ("revert", _command(t, "revert_seconds")),
    ]
    if check:
        ops.append(("check", _command(t, "check_seconds")))
    ops += [("detach", t["detach_seconds"]), ("snapshot completed", t["snapshot_seconds"])]
    return ops


def helper_operations(t: Mapping[str, float]) -> list[tuple[str, float]]:
    """The part of a restore that holds the helper's turn (taken before CreateVolume,
    given back once the volume is detached): the helper's work in the fleet's ideal."""
    return [op for op in operations(t) if op[0] != "snapshot completed"]


def waiter_seconds(latency: float, delay: float = WAITER_DELAY_SECONDS) -> float:
    """A botocore waiter looks at once, then every `delay` s: it sees an operation that
    takes `latency` at the next multiple of `delay`."""
    return math.ceil(latency / delay) * delay if latency > 0 else 0.0


def waiter_operations(t: Mapping[str, float]) -> list[tuple[str, float]]:
    """The same restore driven by botocore's waiters: every wait (one per operation; the
    disk arrival and the command delivery are inside the Inspect wait) rounded up to a
    15 s poll. API calls and the script itself are taken to cost nothing."""
    merged = [
        ("volume available", t["volume_available_seconds"]),
        ("attach", t["attach_seconds"]),
        (
            "inspect",
            max(t["disk_arrival_seconds"], t["command_delivery_seconds"]) + t["inspect_seconds"],
        ),
        ("revert", _command(t, "revert_seconds")),
        ("check", _command(t, "check_seconds")),
        ("detach", t["detach_seconds"]),
        ("snapshot completed", t["snapshot_seconds"]),
    ]
    return [(name, waiter_seconds(seconds)) for name, seconds in merged]


def total(ops: list[tuple[str, float]]) -> float:
    return sum(seconds for _, seconds in ops)
