"""Shared scenario builders for the simulator's tests."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.simulator.harness import Aws, simulated_aws
from tests.simulator.runs import SCENARIOS, Run, finished_run

MINI_TEMPLATE = Path(__file__).parent / "fixtures" / "mini" / "template.yaml"


MiniScenario = Callable[..., dict[str, Any]]


@pytest.fixture
def mini_scenario() -> MiniScenario:
    """Builds a scenario over the throwaway test stack, with one Windows helper."""

    def build(steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "name": "mini",
            "template": str(MINI_TEMPLATE),
            "instances": {"helper": {"helper": True}},
            "steps": steps,
            **extra,
        }

    return build


@pytest.fixture
def aws(request: pytest.FixtureRequest) -> Iterator[Aws]:
    """Faults to inject come from indirect parametrisation (request.param), if any."""
    with simulated_aws(getattr(request, "param", [])) as harness:
        yield harness


@pytest.fixture(scope="session")
def nightly() -> Run:
    """The shipped nightly-backup scenario, run once for every test that reads it."""
    return finished_run(SCENARIOS / "nightly-backup.json")
