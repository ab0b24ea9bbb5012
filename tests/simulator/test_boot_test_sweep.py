"""What a lost boot test leaves (docs/boot-test.md): the reconciliation terminates the
throwaway instance and deletes its volumes once the restore's execution no longer runs, and
touches nothing of a boot test whose execution still runs."""

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from simulator import Report, Simulation, load
from simulator.helpers import BootTestInstance
from tests.simulator.runs import SCENARIOS
from vss_restore import reconcile, tags
from vss_restore.logic.reconciliation import DELETED, TERMINATED, BootTestLeftover

AT = timedelta(seconds=1000)  # the abort, or the reconciliation, in both scenarios


@dataclass
class SweepRun:
    report: Report
    result: dict[str, str]  # night1.C's consistent snapshot's boot-test tags
    clones: list[dict[str, Any]]  # the throwaway instances, as DescribeInstances
    modelled: list[BootTestInstance]  # the same, as the simulator ran them
    boot_test_volumes: list[dict[str, Any]]  # volumes tagged as the boot test's, still there
    sweeps: list[list[BootTestLeftover]]  # what each reconciliation's sweep returned
    started: Any


def _run(name: str, monkeypatch: pytest.MonkeyPatch) -> SweepRun:
    sweeps: list[list[BootTestLeftover]] = []
    sweep = reconcile.sweep_boot_tests

    def spy(*args: Any, **kwargs: Any) -> list[BootTestLeftover]:
        found = sweep(*args, **kwargs)
        sweeps.append(found)
        return found

    monkeypatch.setattr(reconcile, "sweep_boot_tests", spy)
    document = json.loads((SCENARIOS / f"{name}.json").read_text())
    with Simulation(load(document)) as simulation:
        started = simulation.world.clock.now()
        report = simulation.run()
        ec2 = simulation.ec2_client()
        backup = simulation.aliases.snapshots["night1.C"]
        found = ec2.describe_snapshots(SnapshotIds=[backup])["Snapshots"][0]
        made = tags.as_dict(found.get("Tags")).get(tags.RESULT_SNAPSHOT, "")
        result: dict[str, str] = {}
        # A failed restore's consistent snapshot is deleted: no result left to read then.
        for snapshot in ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [made]}])[
            "Snapshots"
        ]:
            result = {
                k: v
                for k, v in tags.as_dict(snapshot.get("Tags")).items()
                if k in tags.BOOT_TEST_KEYS
            }
        reservations = ec2.describe_instances(
            Filters=[{"Name": f"tag:{tags.RESOURCE}", "Values": [tags.BOOT_TEST_INSTANCE]}]
        )["Reservations"]
        volumes = [
            volume
            for kind in (tags.BOOT_TEST_INSTANCE, tags.BOOT_TEST_ROOT)
            for volume in ec2.describe_volumes(
                Filters=[{"Name": f"tag:{tags.RESOURCE}", "Values": [kind]}]
            )["Volumes"]
        ]
        return SweepRun(
            report=report,
            result=result,
            clones=[i for r in reservations for i in r["Instances"]],
            modelled=list(simulation.fleet.boot_tests.values()),
            boot_test_volumes=volumes,
            sweeps=sweeps,
            started=started,
        )


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def lost(monkeypatch_module: pytest.MonkeyPatch) -> SweepRun:
    return _run("boot-test-lost", monkeypatch_module)


@pytest.fixture(scope="module")
def running(monkeypatch_module: pytest.MonkeyPatch) -> SweepRun:
    return _run("boot-test-reconcile-while-running", monkeypatch_module)


def test_the_abort_came_in_the_middle_of_the_boot_test(lost: SweepRun) -> None:
    [clone] = lost.modelled
    abort = lost.started + AT
    # Launched, swapped and started on the consistent root before the abort; not yet booted.
    assert clone.swapped
    assert clone.started_at is not None
    assert clone.started_at < abort
    assert clone.boots_at is not None
    assert clone.boots_at > abort


def test_the_reconciliation_leaves_nothing_of_a_lost_boot_test(lost: SweepRun) -> None:
    assert lost.report.ok, lost.report.failures
    assert [c["State"]["Name"] for c in lost.clones] == ["terminated"]
    assert lost.boot_test_volumes == []
    assert lost.report.volumes_left == []
    assert not [f for f in lost.report.failures if "left" in f]
    [swept] = lost.sweeps
    [clone] = lost.clones
    actions = {(found.kind, found.action) for found in swept}
    assert actions == {(tags.BOOT_TEST_INSTANCE, TERMINATED), (tags.BOOT_TEST_ROOT, DELETED)}
    assert swept[0].resource_id == clone["InstanceId"]
    assert {found.execution_status for found in swept} == {"ABORTED"}


def test_the_sweep_says_what_it_removed_in_one_alert(lost: SweepRun) -> None:
    released, sweep_alert = lost.report.alerts
    assert "ABORTED" in released["subject"]
    assert sweep_alert["subject"] == "vss-restore: 2 boot-test leftover(s) of lost executions"
    [clone] = lost.clones
    assert f"Instance:   {clone['InstanceId']} (terminated)" in sweep_alert["message"]
    assert "(deleted)" in sweep_alert["message"]
    assert "001-SnapshotCompleted (ABORTED)" in sweep_alert["message"]


def test_nothing_is_swept_while_the_execution_runs(running: SweepRun) -> None:
    assert running.report.ok, running.report.failures
    [clone] = running.modelled
    moment = running.started + AT
    # The reconciliation ran while the clone ran on the consistent root, and swept nothing.
    assert clone.started_at is not None
    assert clone.started_at < moment
    assert clone.terminated_at is not None
    assert clone.terminated_at > moment
    assert running.sweeps == [[]]
    # The boot test went on undisturbed and removed its own instance and root.
    assert running.result[tags.BOOT_TEST] == tags.BOOTED
    assert [c["State"]["Name"] for c in running.clones] == ["terminated"]
    assert running.boot_test_volumes == []
    assert running.report.alerts == []
