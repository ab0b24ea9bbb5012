"""Restores that reach a paced call together are spread at the paced rate (logic/pacing.py):
a slot too far off is waited for by the state machine, and nothing fails for it."""

import itertools
import json
import re
from typing import Any

from simulator import Simulation, load
from tests.simulator.runs import SCENARIOS, failures
from vss_restore import tags

# One consistent snapshot every 500 s, one temporary volume every 250 s: further apart than
# the helper's turns (about 216 s), so each restore after the first waits for its slot in the
# state machine (more than the 10 s a Lambda waits for itself).
SNAPSHOT_GAP, VOLUME_GAP = 500.0, 250.0
ENTERED = re.compile(r"^\+\S+\s+\S+\s+(?P<state>.+)$")


def test_restores_snapshotting_at_once_are_spread_at_the_paced_rate_and_all_verified() -> None:
    scenario: dict[str, Any] = json.loads((SCENARIOS / "fleet-burst.json").read_text())
    scenario["name"] = "paced-burst"
    scenario["parameters"] = {
        **scenario["parameters"],
        "PaceCreateSnapshot": str(1 / SNAPSHOT_GAP),
        "PaceCreateVolume": str(1 / VOLUME_GAP),
    }
    scenario["steps"][-1] = {"advance": 3600}
    entered: list[str] = []

    def progress(line: str) -> None:
        if found := ENTERED.match(line.strip()):
            entered.append(found["state"].strip())

    with Simulation(load(scenario), progress=progress) as simulation:
        report = simulation.run()
        found = simulation.ec2_client().describe_snapshots(
            OwnerIds=["self"],
            Filters=[{"Name": f"tag:{tags.RESOURCE}", "Values": [tags.CONSISTENT_SNAPSHOT]}],
        )["Snapshots"]
        volumes = simulation.ec2_client().describe_volumes(
            Filters=[{"Name": f"tag:{tags.RESOURCE}", "Values": [tags.TEMPORARY_VOLUME]}]
        )["Volumes"]

    assert report.ok, failures(report)
    assert [s.verdict for s in report.snapshots if s.origin == "backup"] == ["verified"] * 4
    assert not [e for e in report.executions if e.status == "FAILED"]
    assert report.calls_refused == []  # the pacers' updates are allowed, nothing else needed
    # The Wait path was taken: the slots handed back were waited for by the state machine.
    assert entered.count("Wait for the slot to snapshot") >= 2
    assert "Wait for the slot to create the volume" in entered
    # Four consistent snapshots, their CreateSnapshot calls at least the gap apart (StartTime
    # comes in whole seconds: 1 s of rounding).
    times = sorted(s["StartTime"].timestamp() for s in found)
    assert len(times) == 4
    assert min(b - a for a, b in itertools.pairwise(times)) >= SNAPSHOT_GAP - 1
    assert volumes == []  # every temporary volume deleted
