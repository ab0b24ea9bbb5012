"""#14 finding 2: no forced detach while the disk tool still acts on the volume's disk.

An execution aborted during the Check: the release finds the Check still running on the
helper, cancels it (SSM: Cancelling, then Cancelled), and force-detaches the volume only
once the command has ended, so that no script acts on a disk number Windows may give the
next disk. A Revert is never cancelled (VSS cannot): the detach waits for it.
"""

import json
from typing import Any

import pytest

from simulator import Simulation, load
from simulator.scenario import REPO_ROOT
from vss_restore import cleanup
from vss_restore.aws.ssm import Command
from vss_restore.errors import CleanupPending

NIGHTLY = REPO_ROOT / "simulator" / "scenarios" / "nightly-backup.json"


def test_an_aborted_restores_check_is_cancelled_before_its_volume_is_detached() -> None:
    document: dict[str, Any] = json.loads(NIGHTLY.read_text())
    document["timing"] = {"check_seconds": 1800}
    document["steps"] = [
        {"backup": "web1", "name": "night1", "volumes": ["D"], "wait_for_events": False},
        {"abort": {"execution": "001"}, "at": 900},
    ]
    document["expect"] = {}
    with Simulation(load(document)) as simulation:
        report = simulation.run()
        checks = [
            i
            for i in simulation.agents.log
            if i.document.is_disk_tool and i.parameters.get("Action") == "Check"
        ]
        [check] = checks
        now = simulation.clock.now()
        status, _ = check.status(now)
        [record] = [
            r for r in simulation.world.attachments if r.volume_id == check.parameters["VolumeId"]
        ]

    assert [e.status for e in report.executions][:1] == ["ABORTED"]
    assert status == "Cancelled"
    assert check.killed  # the agent stopped the script's process
    assert check.done_at is not None
    assert record.detach_requested_at is not None
    assert record.detach_requested_at >= check.done_at  # detached only once it had ended
    assert report.volumes_left == []
    assert report.calls_refused == []


class _Agent:
    """An SSM stand-in: the commands it lists, and the ones it was asked to cancel."""

    def __init__(self, commands: list[Command]) -> None:
        self.commands = commands
        self.cancelled: list[str] = []

    def unfinished_commands(self, instance_id: str, document: str, volume_id: str) -> list[Command]:
        return self.commands

    def cancel(self, command_id: str, instance_id: str) -> None:
        self.cancelled.append(command_id)


def test_inspect_and_check_are_cancelled_a_revert_is_waited_for() -> None:
    agent = _Agent(
        [
            Command("c-inspect", "Inspect", "InProgress"),
            Command("c-revert", "Revert", "InProgress"),
            Command("c-check", "Check", "Pending"),
            Command("c-gone", "Check", "Cancelling"),
        ]
    )
    with pytest.raises(CleanupPending, match="Revert c-revert"):
        cleanup.stop_disk_tool(agent, "doc", "i-1", "vol-1")  # type: ignore[arg-type]
    assert agent.cancelled == ["c-inspect", "c-check"]

    done = _Agent([])
    cleanup.stop_disk_tool(done, "doc", "i-1", "vol-1")  # type: ignore[arg-type]
    assert done.cancelled == []
