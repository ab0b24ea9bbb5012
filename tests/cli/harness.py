"""Runs the vss-restore CLI in-process against the simulator, as an operator would."""

import io
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

from operator_cli import follow, recovery
from operator_cli.cli import main
from simulator import Simulation


@dataclass(frozen=True)
class Said:
    """What one command printed, and its exit status."""

    code: int
    out: str
    err: str


def vss_restore(*argv: str) -> Said:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return Said(code, out.getvalue(), err.getvalue())


def pointed_at(simulation: Simulation) -> list[str]:
    """The options that point the CLI at the simulated account: the simulator deploys the
    template's resources into moto, but no CloudFormation stack records them."""
    machine = next(iter(simulation.stack.state_machines.values()))
    return ["--region", simulation.world.region, "--state-machine", machine]


@contextmanager
def operating(simulation: Simulation) -> Iterator[None]:
    """The test's thread operates the simulated account (Simulation.operate): executions the
    CLI starts run while `--follow` sleeps between two looks, and its deadline is virtual."""
    clock = simulation.clock
    virtual_time = types.SimpleNamespace(sleep=clock.sleep, monotonic=clock.elapsed)
    with (
        simulation.operate(),
        mock.patch.object(follow, "time", virtual_time),
        mock.patch.object(recovery, "time", virtual_time),
    ):
        yield
