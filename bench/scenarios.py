"""The bench's scenarios, generated: one restore, and the nightly burst of a fleet."""

import math
from typing import Any

from bench import model

# The workflow's mutating calls a fleet's throttling hits, with the error code each API
# answers when throttled, and about how many calls one restore makes of each.
MUTATING_CALLS: dict[str, tuple[str, int]] = {
    "ec2:CreateVolume": ("RequestLimitExceeded", 1),
    "ec2:AttachVolume": ("RequestLimitExceeded", 1),
    "ec2:DetachVolume": ("RequestLimitExceeded", 1),
    "ec2:DeleteVolume": ("RequestLimitExceeded", 1),
    "ec2:CreateSnapshot": ("RequestLimitExceeded", 1),
    "ec2:CreateTags": ("RequestLimitExceeded", 2),
    "ssm:SendCommand": ("ThrottlingException", 3),
}

SYSTEM_VOLUME = {"alias": "C", "size": 30, "drive_letters": ["C"], "system": True}


def single_restore(name: str, revert_seconds: float) -> dict[str, Any]:
    """One nightly snapshot of a 50 GiB data volume, restored on the stack's helper as the
    snapshot's event arrives; the workflow's own consistent snapshot then sends its event
    too (a second, short execution that skips it)."""
    return {
        "name": name,
        "description": f"bench: one restore, revert {revert_seconds:g} s",
        "parameters": {"HelperMode": "named", "HelperInstanceIds": "${instance:helper}"},
        "timing": model.timing(revert_seconds=revert_seconds),
        "instances": {
            "web1": {
                "volumes": [
                    SYSTEM_VOLUME,
                    {
                        "alias": "D",
                        "device": "xvdb",
                        "size": model.DATA_VOLUME_GIB,
                        "drive_letters": ["D"],
                    },
                ]
            },
            "helper": {"helper": True},
        },
        "snapshots": {"night.D": {"volume": "web1.D"}},
        "steps": [{"deliver": {"snapshot": "night.D"}}],
        "expect": {
            "snapshots": {"night.D": {"verdict": "verified", "content_consistent": True}},
            "max_attached_per_helper": 1,
            "locks_free": True,
        },
    }


def helper_alias(number: int) -> str:
    return f"helper{number}"


def instance_alias(index: int) -> str:
    return f"web{index + 1:03d}"


def assigned_helper(index: int, helpers: int) -> str:
    """The helper an operator assigned to the fleet's instance `index` (round robin)."""
    return helper_alias(index % helpers + 1)


def fleet_volumes(instance_index: int, instances: int) -> list[dict[str, Any]]:
    """C: and a data volume D: on every instance; the first half also has E: and F:, so
    that 100 instances make 300 snapshots a night."""
    volumes: list[dict[str, Any]] = [
        SYSTEM_VOLUME,
        {"alias": "D", "size": model.DATA_VOLUME_GIB, "drive_letters": ["D"]},
    ]
    if instance_index < instances // 2:
        volumes += [
            {"alias": "E", "size": 100, "drive_letters": ["E"]},
            {"alias": "F", "size": 100, "drive_letters": ["F"]},
        ]
    return volumes


def throttling_faults(restores: int, every: int) -> list[dict[str, Any]]:
    """Every `every`-th call of each mutating API answers with its throttling error.

    The simulator injects counts, not rates: a fault hits the next `times` calls after
    skipping `skip`. One fault per hit, the k-th skipping so that it lands on call
    every*(k+1). Faults are consumed in order and a call that one fault hits does not
    count against the later ones' skips, hence skip = every*(k+1) - 1 - k.
    """
    faults = []
    for action, (error, per_restore) in MUTATING_CALLS.items():
        hits = math.ceil(restores * per_restore * 1.5 / every) + 1
        faults += [
            {
                "action": action,
                "error": error,
                "message": f"Rate exceeded (bench: every {every}th {action} call)",
                "skip": every * (k + 1) - 1 - k,
                "times": 1,
            }
            for k in range(hits)
        ]
    return faults


def fleet(
    *,
    instances: int = 100,
    helpers: int = 5,
    burst_seconds: float = 60.0,
    throttle_every: int | None = 20,
    concurrency: int = 1,
    name: str = "bench-fleet",
) -> dict[str, Any]:
    """The nightly burst: every instance's snapshots complete within `burst_seconds`, their
    events start a restore each, on one of the helpers the stack names (HelperInstanceIds):
    the least busy when the restore prepares its helper. `assigned_helper` is the even
    split the bench's shards model (bench/fleet.py).
    """
    spec_instances: dict[str, Any] = {
        helper_alias(h): {"helper": True} for h in range(1, helpers + 1)
    }
    snapshots: dict[str, Any] = {}
    for i in range(instances):
        alias = instance_alias(i)
        volumes = fleet_volumes(i, instances)
        spec_instances[alias] = {"volumes": volumes}
        for volume in volumes:
            snapshots[f"night.{alias}.{volume['alias']}"] = {"volume": f"{alias}.{volume['alias']}"}
    gap = burst_seconds / max(len(snapshots), 1)
    steps: list[dict[str, Any]] = [
        {"deliver": {"snapshot": alias}, "at": round(k * gap, 3), "wait_for_events": False}
        for k, alias in enumerate(snapshots)
    ]
    steps.append({"wait": "executions"})
    return {
        "name": name,
        "description": f"bench: {len(snapshots)} snapshot events of {instances} instances "
        f"within {burst_seconds:g} s, {helpers} helpers at concurrency {concurrency}",
        "parameters": {
            "HelperMode": "named",
            "HelperInstanceIds": ",".join(
                f"${{instance:{helper_alias(h)}}}" for h in range(1, helpers + 1)
            ),
            "HelperConcurrency": str(concurrency),
        },
        "timing": model.timing(),
        "instances": spec_instances,
        "snapshots": snapshots,
        "steps": steps,
        "faults": throttling_faults(len(snapshots), throttle_every) if throttle_every else [],
        "expect": {"max_attached_per_helper": concurrency, "locks_free": True},
        # Hours of virtual time: far more real seconds than one restore needs.
        "limits": {"execution_real_seconds": 7200, "max_executions": 4 * len(snapshots) + 100},
    }


# HelperMode=fleet: after the last restore, the helpers must be gone. A helper idle for
# HelperIdleMinutes (10, the template's default) is terminated by the five-minute schedule
# (RetireHelpersFunction): 10 + 5 min, and one more period for the schedule's phase.
FLEET_RETIRE_SECONDS = 20 * 60


def fleet_mode(
    *,
    instances: int = 100,
    max_helpers: int = 5,
    burst_seconds: float = 60.0,
    throttle_every: int | None = 20,
    concurrency: int = 1,
    name: str = "bench-fleet-mode",
) -> dict[str, Any]:
    """The nightly burst as the template deploys by default (HelperMode=fleet): no helper
    runs when the events arrive; the workflow launches up to `max_helpers` (MaxHelpers),
    each waits for its Windows to boot (the simulator's modelled 240 s), serves the restores
    in its line, and is terminated once idle for HelperIdleMinutes."""
    whole = fleet(
        instances=instances,
        helpers=0,
        burst_seconds=burst_seconds,
        throttle_every=throttle_every,
        concurrency=concurrency,
        name=name,
    )
    whole["description"] = (
        f"bench: {len(whole['snapshots'])} snapshot events of {instances} instances within "
        f"{burst_seconds:g} s, HelperMode=fleet, MaxHelpers {max_helpers}, concurrency "
        f"{concurrency}"
    )
    whole["parameters"] = {
        "HelperMode": "fleet",
        "MaxHelpers": str(max_helpers),
        "HelperConcurrency": str(concurrency),
    }
    # The bench measures the workflow, not the account's vCPU quota (doctor checks that):
    # room for every instance (t3.large, 2 vCPUs) and MaxHelpers helpers (m6i.large, 2).
    whole["quotas"] = {"on_demand_standard_vcpus": 2 * (instances + max_helpers)}
    whole["steps"].append({"advance": FLEET_RETIRE_SECONDS})
    whole["expect"] = {"max_attached_per_helper": concurrency, "locks_free": True}
    return whole
