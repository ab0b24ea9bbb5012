"""Two simulated nights of backups and restores, for the tests that read their verdicts."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator import Simulation, load

TWO_NIGHTS = Path(__file__).parent / "fixtures" / "two-nights.json"


@pytest.fixture(scope="module")
def two_nights() -> Iterator[Simulation]:
    """The account after the two nights (see the scenario's description), still simulated:
    the CLI's calls in the module's tests reach it."""
    with Simulation(load(TWO_NIGHTS)) as simulation:
        report = simulation.run()
        assert report.ok, report.failures
        yield simulation
