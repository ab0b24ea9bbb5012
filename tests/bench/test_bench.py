"""The bench (issue #7), small: its model, its scenarios, and each measurement on a tiny run."""

import os
import subprocess
from pathlib import Path

import pytest

from bench import allin, coldstart, model, runs, scenarios
from bench import fleet as fleet_module
from bench import restore as restore_module
from bench.table import Row, render
from simulator.disks import BLOCK_SIZE, GIB, WRITE_RATE
from simulator.faults import Faults, parse_fault
from simulator.scenario import load
from simulator.world import Timing


def test_the_restore_without_orchestration_is_the_sum_of_the_modelled_operations() -> None:
    timing = model.timing(revert_seconds=120)

    ops = dict(model.operations(timing))

    # CreateVolume 2, attach 3, disk/command 1, inspect 20, revert 1+120, check 1+60,
    # detach 3, snapshot 180.
    assert model.total(model.operations(timing)) == 391
    assert ops["revert"] == timing["command_delivery_seconds"] + 120
    assert model.total(model.helper_operations(timing)) == 391 - timing["snapshot_seconds"]


def test_a_waiter_sees_an_operation_at_the_next_15_second_poll() -> None:
    assert [model.waiter_seconds(s) for s in (0, 2, 15, 16, 121, 180)] == [0, 15, 15, 30, 135, 180]
    # 15 + 15 + 30 + 135 + 75 + 15 + 180
    assert model.total(model.waiter_operations(model.timing())) == 465


def test_the_model_refuses_a_latency_it_does_not_have() -> None:
    with pytest.raises(KeyError, match="revert_minutes"):
        model.timing(revert_minutes=2)


def test_every_latency_of_the_model_says_where_it_comes_from() -> None:
    assert set(model.WHY) == set(model.LATENCIES)


def test_injected_throttling_hits_every_20th_call_of_each_api() -> None:
    faults = Faults([parse_fault(f) for f in scenarios.throttling_faults(60, every=20)])

    hit = [n for n in range(1, 101) if faults.api_error("ec2", "CreateVolume")]

    assert hit == [20, 40, 60, 80, 100]
    assert [n for n in range(1, 41) if faults.api_error("ssm", "SendCommand")] == [20, 40]
    assert faults.api_error("ec2", "DescribeVolumes") is None


def test_the_fleet_is_300_snapshots_of_100_instances_shared_by_5_helpers() -> None:
    spec = fleet_module.FleetSpec()
    whole = load(fleet_module.shard(spec, None))
    parts = [fleet_module.shard(spec, h) for h in range(1, 6)]

    assert len(whole.snapshots) == 300
    assert len([a for a in whole.instances if a.startswith("web")]) == 100
    assert [len(p["snapshots"]) for p in parts] == [60] * 5
    assert sorted(a for p in parts for a in p["snapshots"]) == sorted(whole.snapshots)
    # Every event in the burst's first minute, at the same moment in its part.
    delivered = [s["at"] for p in parts for s in p["steps"] if "deliver" in s]
    assert max(delivered) < 60
    assert len(delivered) == 300
    for part in parts:
        load(part)  # valid against the simulator's schema
    # The whole stack names the five helpers; each part, its own.
    assert whole.parameters["HelperInstanceIds"].count("${instance:helper") == 5
    assert [p["parameters"]["HelperInstanceIds"] for p in parts] == [
        f"${{instance:helper{h}}}" for h in range(1, 6)
    ]


def test_import_time_lines_are_read_by_module() -> None:
    report = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |     botocore.compat\n"
        "import time:       200 |        300 |   boto3\n"
        "import time:       250 |        250 |   aws_xray_sdk.core\n"
        "import time:        50 |        600 | vss_restore.handlers.x\n"
    )

    assert coldstart.cumulative_us(report, "vss_restore.handlers.x") == 600
    assert coldstart.by_package(report)["aws_xray_sdk"] == 250


def test_cold_start_pairs_each_handler_with_boto3_and_takes_the_median_ratio() -> None:
    # boto3, handler: a warm-up pair, then three pairs.
    times = iter([999, 999, 100, 150, 300, 420, 90, 180])

    def importer(module: str) -> str:
        return f"import time:         1 | {next(times):10d} | {module}\n"

    result = coldstart.measure(3, ["h"], importer=importer)

    assert result["handlers"]["h"]["ratio"] == 1.5  # median of 1.5, 1.4, 2.0
    assert result["boto3_ms"] == 0.1  # median of 100, 300, 90 µs
    assert result["worst"] == "h"


def test_a_real_handler_import_is_measured_in_a_fresh_interpreter() -> None:
    module = coldstart.handler_modules()[0]

    report = coldstart.importtime_report(module)

    assert coldstart.cumulative_us(report, module) > coldstart.cumulative_us(report, "boto3")


def test_the_runtime_imports_the_handler_from_the_package_and_boto3_from_after_it(
    tmp_path: Path,
) -> None:
    python = coldstart.runtime_python()
    if python is None:
        pytest.skip("no python3.12 on this machine: the bench falls back to the dev venv")
    where = coldstart.lambda_like(python, tmp_path)
    assert coldstart.package_compile()[:2] == ["-m", "compileall"]
    module = coldstart.handler_modules()[0]
    code = (
        "import boto3, botocore, vss_restore, aws_lambda_powertools as p; "
        "print(boto3.__file__, vss_restore.__file__, p.__file__, sep='\\n')"
    )
    path = ":".join(str(p) for p in where.path)
    done = subprocess.run(
        [where.python, "-c", code],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
    )
    boto3, ours, powertools = done.stdout.split()

    assert where.version().startswith("3.12")
    assert boto3.startswith(str(tmp_path / "runtime"))
    assert ours.startswith(str(tmp_path / "task"))
    assert powertools.startswith(str(tmp_path / "task"))
    # Compiled as `make build` compiles the package, by the runtime's Python.
    compiled = set((tmp_path / "task").rglob("*.pyc"))
    handler = module.rsplit(".", 1)[1]
    pyc = tmp_path / "task/vss_restore/handlers/__pycache__" / f"{handler}.cpython-312.pyc"
    assert pyc in compiled
    report = coldstart.importtime_report(module, where)
    assert coldstart.cumulative_us(report, module) > coldstart.cumulative_us(report, "boto3")
    assert set((tmp_path / "task").rglob("*.pyc")) == compiled  # an import writes none


@pytest.fixture(scope="module")
def one_restore() -> restore_module.Run:
    return restore_module.restore_run(model.SHORT_REVERT_SECONDS)


def test_one_restore_overhead_is_its_time_beyond_the_modelled_operations(
    one_restore: restore_module.Run,
) -> None:
    result = restore_module.overhead(one_restore, model.SHORT_REVERT_SECONDS)

    assert one_restore.report.ok, one_restore.report.failures
    assert result["aws_seconds"] == 391
    assert result["overhead_seconds"] == pytest.approx(result["workflow_seconds"] - 391, abs=0.11)
    waits = sum(p["measured_seconds"] for p in result["phases"])
    assert waits + result["outside_waits_seconds"] == pytest.approx(
        result["workflow_seconds"], abs=0.5
    )
    # Polling can only see an operation after it is done.
    assert all(p["excess_seconds"] >= 0 for p in result["phases"])


def test_one_restore_costs_its_transitions_lambda_time_and_volume_hours(
    one_restore: restore_module.Run,
) -> None:
    result = restore_module.cost(one_restore, model.SHORT_REVERT_SECONDS, 50)

    assert result["transitions"] == sum(e.transitions for e in one_restore.executions)
    assert result["transitions_other_executions"] > 0  # its own snapshot's event, skipped
    assert result["lambda_memory_gb"] == 0.25  # 256 MB, the template's Globals
    assert result["dollars"]["transitions"] == pytest.approx(result["transitions"] * 0.025e-3)
    assert result["dollars"]["lambda_requests"] == pytest.approx(
        result["lambda_invocations"] * 0.2e-6
    )
    assert result["dollars"]["lambda_gb_seconds"] == pytest.approx(
        result["lambda_billed_seconds"] * 0.25 * 0.0000133334, rel=1e-3
    )
    assert 0 < result["volume_hours"] < result["restore_minutes"] / 60


def test_one_restore_measures_its_consistent_snapshots_changed_data_against_the_source(
    one_restore: restore_module.Run,
) -> None:
    result = restore_module.cost(one_restore, model.SHORT_REVERT_SECONDS, 50)
    # The simulator's block model (simulator/disks.py): what was written after the shadow
    # copy on D:'s one data partition is written back by the revert (the bench's model
    # leaves shadow_copy_seconds at the simulator's default).
    written = int(WRITE_RATE * Timing().shadow_copy_seconds) // BLOCK_SIZE

    assert result["consistent_snapshot_unmeasured"] == []
    assert result["consistent_snapshot_changed_gib"] == round(written * BLOCK_SIZE / GIB, 3)
    assert result["consistent_snapshot_dollars_per_month"] == round(
        result["consistent_snapshot_changed_gib"] * 0.05, 4
    )


def test_each_invocation_is_billed_for_its_time_on_the_virtual_clock_waits_included(
    one_restore: restore_module.Run,
) -> None:
    result = restore_module.cost(one_restore, model.SHORT_REVERT_SECONDS, 50)
    by_function = result["lambda_seconds_by_function"]
    modelled = model.LATENCIES["lambda_seconds"]

    # CreateVolume, AttachVolume and DetachVolume wait for the volume inside the invocation.
    assert (
        by_function["CreateVolumeFunction"]
        >= modelled + model.LATENCIES["volume_available_seconds"]
    )
    assert by_function["AttachVolumeFunction"] >= modelled + model.LATENCIES["attach_seconds"]
    assert by_function["DetachVolumeFunction"] >= modelled + model.LATENCIES["detach_seconds"]
    assert result["lambda_seconds"] > result["lambda_invocations"] * modelled
    assert result["lambda_billed_seconds"] >= result["lambda_seconds"]


def test_lambda_bills_each_invocation_rounded_up_to_the_millisecond() -> None:
    assert restore_module.billed(0.2) == 0.2
    assert restore_module.billed(2.2001) == 2.201
    assert restore_module.billed(0.0004) == 0.001


def test_a_small_fleet_is_verified_one_volume_per_helper_at_a_time() -> None:
    spec = fleet_module.FleetSpec(instances=2, helpers=2, throttle_every=4)

    result = fleet_module.measure(spec, shards=False)

    assert result["snapshots"] == 6  # C, D, E, F of the first; C, D of the second
    assert result["verified"] == 6
    assert result["lost"] == 0
    assert result["failures"] == []
    assert set(result["peak_attached"].values()) == {1}
    assert sum(result["throttled_calls"].values()) > 0
    assert result["makespan_seconds"] >= result["ideal_seconds"]


def test_every_timeout_of_a_queued_turn_counts_as_a_round_waiting_for_it() -> None:
    # One helper for 12 snapshots: the last ones wait more than two 15-minute timeouts.
    spec = fleet_module.FleetSpec(instances=4, helpers=1, throttle_every=None)
    result = runs.run(fleet_module.shard(spec, None))

    timeouts = [
        [s.state for s in e.entered if s.state.endswith(runs.RETRIED)] for e in result.executions
    ]
    summary = fleet_module.summarize(result)

    assert max(len(t) for t in timeouts) >= 2
    assert {s for t in timeouts for s in t} == {fleet_module.TURN_WAIT}
    assert summary["turn_waits"] == sum(len(t) for t in timeouts)


def test_the_table_says_which_goals_are_met() -> None:
    text = render(
        [Row("a", "1", "<= 2", True), Row("b", "3", "<= 2", False), Row("c", "4", "-", None)]
    )

    lines = text.splitlines()
    assert lines[0].split() == ["measurement", "value", "goal", "met?"]
    assert [line.split()[-1] for line in lines[2:]] == ["yes", "NO", "-"]


def test_a_helper_at_concurrency_above_one_is_busy_once_for_overlapping_restores() -> None:
    assert allin._merge([(0, 10), (5, 15), (20, 30)]) == 25
