"""Runs the real restore workflow against moto, with the AWS and Windows behaviour moto lacks."""

from simulator.clock import Deadlock, RunStopped, Stuck
from simulator.report import ExecutionResult, Report, SnapshotResult
from simulator.runner import Simulation, run_scenario
from simulator.scenario import Scenario, ScenarioError, load

__all__ = [
    "Deadlock",
    "ExecutionResult",
    "Report",
    "RunStopped",
    "Scenario",
    "ScenarioError",
    "Simulation",
    "SnapshotResult",
    "Stuck",
    "load",
    "run_scenario",
]
