"""Runs the real restore workflow against moto, with the AWS and Windows behaviour moto lacks."""

from simulator.report import ExecutionResult, Report, SnapshotResult
from simulator.runner import Simulation, run_scenario
from simulator.scenario import Scenario, ScenarioError, load

__all__ = [
    "ExecutionResult",
    "Report",
    "Scenario",
    "ScenarioError",
    "Simulation",
    "SnapshotResult",
    "load",
    "run_scenario",
]
