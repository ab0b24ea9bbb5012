"""Runs the vss-restore CLI in-process against the simulator, as an operator would."""

import io
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

from operator_cli import follow
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
    """The test's thread takes part in the simulation's virtual clock, as the scenario's steps
    do: executions the CLI starts run while it sleeps between two looks, and its deadline is
    virtual. At the end the account is left quiet (every execution ended)."""
    clock = simulation.clock
    virtual_time = types.SimpleNamespace(sleep=clock.sleep, monotonic=clock.elapsed)
    with clock.driving("operator") as operator, mock.patch.object(follow, "time", virtual_time):
        # The commands' and snapshots' events complete the tasks waiting for them.
        simulation.start_eventbridge()
        yield
        clock.wait(
            lambda: not clock.busy(besides=operator), reason="the operator's executions to end"
        )
