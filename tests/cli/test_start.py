"""`vss-restore start`: an operator's on-demand restore, followed live to its verdict."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from simulator import Simulation, load
from tests.cli.harness import operating, pointed_at, vss_restore
from vss_restore import tags


def ready_to_restore(faults: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Last night's VSS snapshot of web1's D:, a helper, and a snapshot that is not VSS."""
    return {
        "name": "cli-start",
        "start": "2026-11-25T08:00:00Z",
        "parameters": {"HelperMode": "named"},
        "instances": {
            "web1": {
                "volumes": [
                    {"alias": "C", "size": 30, "drive_letters": ["C"], "system": True},
                    {"alias": "D", "device": "xvdb", "size": 50, "drive_letters": ["D"]},
                ]
            },
            "helper": {"helper": True},
        },
        "snapshots": {
            "last-night.D": {"volume": "web1.D", "kind": "vss-backup"},
            "crash.C": {"volume": "web1.C", "kind": "crash"},
        },
        "steps": [],
        "faults": faults or [],
    }


@contextmanager
def simulated(faults: list[dict[str, Any]] | None = None) -> Iterator[Simulation]:
    with Simulation(load(ready_to_restore(faults))) as simulation:
        yield simulation


def verdict_tags(simulation: Simulation, alias: str) -> dict[str, str]:
    snapshot_id = simulation.aliases.snapshots[alias]
    ec2: Any = boto3.client("ec2", region_name=simulation.world.region)
    found = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    return {k: v for k, v in tags.as_dict(found.get("Tags")).items() if k in tags.VERDICT_KEYS}


def executions(simulation: Simulation) -> list[dict[str, Any]]:
    sfn: Any = boto3.client("stepfunctions", region_name=simulation.world.region)
    machine = next(iter(simulation.stack.state_machines.values()))
    listed = sfn.list_executions(stateMachineArn=machine)["executions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]


def test_start_follow_shows_each_step_its_time_and_ends_with_the_verdict() -> None:
    with simulated() as simulation:
        snapshot = simulation.aliases.snapshots["last-night.D"]
        helper = simulation.aliases.instances["helper"]

        with operating(simulation):
            said = vss_restore(
                "start", snapshot, "--helper", helper, "--follow", *pointed_at(simulation)
            )

        assert said.code == 0, said.err
        lines = said.out.splitlines()
        assert lines[0].startswith(f"started the restore of {snapshot}: arn:aws:states:")
        # A step still running when looked at ("…") is shown again once it has ended.
        steps = [
            line[11:51].strip()
            for line in lines
            if line[:9].strip().count(":") == 2 and not line.endswith("…")
        ]
        # Every step of the restore, in the order the workflow took them (state names).
        wanted = [
            "Read the request",
            "Resolve the snapshot",
            "Create the volume",
            "Attach the volume",
            "Inspect the disk",
            "Revert the shadow copies",
            "Check the disk",
            "Detach the volume",
            "Snapshot the consistent volume",
            "Delete the temporary volume",
            "Record the verdict",
            "Report the verdicts",
        ]
        # A step seen running is shown twice (off a terminal): with "…", then with its time.
        shown = [s for s in steps if s in wanted]
        assert [s for i, s in enumerate(shown) if not i or shown[i - 1] != s] == wanted
        # The elapsed time grows; each ended step says how long it took; the current one "…".
        revert = next(line for line in lines if "Revert the shadow copies" in line)
        check = next(line for line in lines if "Check the disk" in line)
        assert revert.split()[0] < check.split()[0]
        # The revert waits for its command's event: running, then done after about 2 min.
        assert any(line.endswith("…") and "Revert the shadow copies" in line for line in lines)
        assert any("Revert the shadow copies" in line and line.endswith(" s") for line in lines)
        assert "execution SUCCEEDED after 0:" in said.out
        assert "time per step (longest first):" in said.out
        consistent = verdict_tags(simulation, "last-night.D")[tags.RESULT_SNAPSHOT]
        assert f"verdict: {snapshot} verified; consistent snapshot {consistent}" in said.out

        # The other execution is the one the consistent snapshot's event starts (it skips it).
        (execution, skipping) = sorted(executions(simulation), key=lambda e: e["startDate"])
        assert json.loads(skipping["input"])["detail-type"] == "EBS Snapshot Notification"
        assert execution["name"].startswith(f"on-demand-{snapshot}-")
        assert json.loads(execution["input"]) == {
            "snapshot_id": snapshot,
            "helper_instance_id": helper,
        }
        assert verdict_tags(simulation, "last-night.D")[tags.STATUS] == tags.VERIFIED


def test_start_follow_of_a_restore_that_fails_exits_1_with_the_reason() -> None:
    refused = "VSS_E_VOLUME_IN_USE: the shadow copy's volume is in use"
    with simulated([{"windows": "Revert", "error": refused}]) as simulation:
        snapshot = simulation.aliases.snapshots["last-night.D"]
        helper = simulation.aliases.instances["helper"]

        with operating(simulation):
            said = vss_restore(
                "start", snapshot, "--helper", helper, "--follow", *pointed_at(simulation)
            )

    assert said.code == 1
    assert "Clean up after the failure" in said.out
    assert "execution FAILED after" in said.out
    assert f"verdict: {snapshot} failed" in said.out
    assert refused in said.out.split("verdict:", 1)[1]


def test_start_without_follow_returns_at_once_and_status_shows_the_current_step() -> None:
    with simulated() as simulation:
        snapshot = simulation.aliases.snapshots["last-night.D"]
        helper = simulation.aliases.instances["helper"]
        where = pointed_at(simulation)

        with operating(simulation):
            started = vss_restore("start", snapshot, "--helper", helper, *where)
            arn = started.out.split(": ", 1)[1].splitlines()[0]
            simulation.clock.sleep(120)  # the operator comes back two minutes later
            running = vss_restore("status", arn, *where)

        ended = vss_restore("status", arn, *where)
        by_snapshot = vss_restore("status", snapshot, *where)

    assert started.code == 0
    assert f"vss-restore status {arn}" in started.out
    assert running.code == 1  # not verified yet
    assert "status:    RUNNING" in running.out
    assert "now:       Revert the shadow copies (since +0:0" in running.out
    assert ended.code == 0
    assert "status:    SUCCEEDED after 0:06:" in ended.out
    assert f"verdict:   {snapshot} verified -> snap-" in ended.out
    assert by_snapshot.code == 0
    assert "verdict:   verified at 2026-11-25T08:06:" in by_snapshot.out


def test_start_refuses_an_unknown_snapshot_and_starts_nothing() -> None:
    with simulated() as simulation:
        said = vss_restore("start", "snap-0123456789abcdef0", *pointed_at(simulation))

        assert said.code == 2
        assert said.err == (
            "vss-restore: snap-0123456789abcdef0 does not exist in us-east-1 "
            "(or is not visible to this account)\n"
        )
        assert executions(simulation) == []


def test_start_refuses_a_snapshot_that_is_not_vss_and_starts_nothing() -> None:
    with simulated() as simulation:
        crash = simulation.aliases.snapshots["crash.C"]

        said = vss_restore("start", crash, *pointed_at(simulation))

        assert said.code == 2
        assert said.err.startswith(f"vss-restore: {crash} is not a VSS snapshot: it has neither")
        assert "ConsistentSnapshot=WindowsVSS" in said.err
        assert executions(simulation) == []


def test_start_refuses_a_helper_that_is_no_instance_id() -> None:
    with simulated() as simulation:
        snapshot = simulation.aliases.snapshots["last-night.D"]

        said = vss_restore("start", snapshot, "--helper", "web1", *pointed_at(simulation))

        assert (said.code, said.err) == (
            2,
            "vss-restore: --helper 'web1' is not an instance ID (i-...)\n",
        )
        assert executions(simulation) == []
