"""`vss-restore recover` where no verified consistent snapshot exists for the time asked:
a restore that failed, one that has not run yet, and a --verify-first that does not verify."""

from collections.abc import Iterator
from typing import Any

import pytest

from simulator import Simulation, load
from tests.cli.harness import operating
from tests.cli.test_recover import ec2, recover, recovered_volumes
from vss_restore import tags

REVERT_REFUSED = "VSS_E_VOLUME_IN_USE: the volume is in use"


def failed_then_unverified() -> dict[str, Any]:
    """web1's D: backed up on night 1, whose restore fails (every Revert refused on the
    helper), and again on night 2 with no event (no restore yet)."""
    return {
        "name": "cli-recover-unverified",
        "start": "2026-11-24T23:40:00Z",
        "parameters": {"HelperMode": "named", "HelperInstanceIds": "${instance:helper}"},
        "instances": {
            "web1": {
                "volumes": [
                    {"alias": "C", "device": "/dev/sda1", "drive_letters": ["C"], "system": True},
                    {"alias": "D", "device": "xvdb", "size": 50, "drive_letters": ["D"]},
                ]
            },
            "helper": {"helper": True},
        },
        "steps": [
            {"at": 1200, "backup": "web1", "name": "night1", "volumes": ["D"]},
            {"at": 87600, "backup": "web1", "name": "night2", "volumes": ["D"], "events": "none"},
        ],
        "faults": [{"windows": "Revert", "error": REVERT_REFUSED, "times": None}],
    }


@pytest.fixture(scope="module")
def unverified() -> Iterator[Simulation]:
    with Simulation(load(failed_then_unverified())) as simulation:
        report = simulation.run()
        assert report.snapshot("night1.D").verdict == "failed", report.failures
        with operating(simulation):
            simulation.clock.sleep(600)  # night 2's snapshot completes; no event says so
        yield simulation


def volumes_of_ours(simulation: Simulation) -> list[str]:
    volumes = ec2(simulation).describe_volumes()["Volumes"]
    return [v["VolumeId"] for v in volumes if tags.as_dict(v.get("Tags")).get(tags.RESOURCE)]


def test_no_verified_snapshot_names_the_newest_backup_and_the_way_to_verify_it(
    unverified: Simulation,
) -> None:
    web1 = unverified.aliases.instances["web1"]
    night2 = unverified.aliases.snapshots["night2.D"]

    said = recover(unverified, "--instance", web1, "--drive", "D", "--volumes-only", "--yes")

    assert said.code == 2
    assert "no verified consistent snapshot of drive D: at or before" in said.err
    assert f"the newest backup, {night2} of 2026-11-26 00:00 UTC, has none" in said.err
    assert "no restore has verified it yet" in said.err
    assert "--verify-first" in said.err
    assert f"vss-restore start {night2} --keep-volume --follow" in said.err
    assert recovered_volumes(unverified) == []


def test_a_failed_restore_is_named_with_its_reason(unverified: Simulation) -> None:
    web1 = unverified.aliases.instances["web1"]
    night1 = unverified.aliases.snapshots["night1.D"]

    said = recover(
        unverified, "--instance", web1, "--drive", "D", "--at", "2026-11-25", "--volumes-only"
    )

    assert said.code == 2
    assert f"the newest backup, {night1} of 2026-11-25 00:00 UTC, has none" in said.err
    assert "its restore failed: " in said.err
    assert "VSS_E_VOLUME_IN_USE" in said.err
    assert recovered_volumes(unverified) == []


def test_verify_first_that_does_not_verify_exits_1_and_recovers_nothing(
    unverified: Simulation,
) -> None:
    web1 = unverified.aliases.instances["web1"]
    night2 = unverified.aliases.snapshots["night2.D"]

    said = recover(
        unverified, "--instance", web1, "--drive", "D", "--volumes-only", "--verify-first", "--yes"
    )

    assert said.code == 1
    assert f"restoring {night2} through the workflow first" in said.out
    assert f"the restore of {night2} did not verify it (its restore failed: " in said.err
    assert "nothing recovered for drive D:" in said.err
    # Neither a recovered volume nor the workflow's own: the failed restore cleaned up.
    assert recovered_volumes(unverified) == []
    assert volumes_of_ours(unverified) == []
