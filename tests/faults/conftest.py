"""The cases' runs, one process per CPU: each run is CPU-bound and independent of the others."""

import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from tests.faults.cases import Case
from tests.faults.runs import Outcome, run


class Outcomes:
    """Each selected case's outcome, computed ahead in worker processes."""

    def __init__(self, pool: ProcessPoolExecutor | None, cases: list[Case]) -> None:
        self._futures: dict[str, Future[Outcome]] = {}
        if pool is not None:
            # The longest runs first, so that no worker is left with one at the end.
            for case in sorted(cases, key=_cost, reverse=True):
                self._futures[case.id] = pool.submit(run, case)

    def of(self, case: Case) -> Outcome:
        future = self._futures.get(case.id)
        return future.result() if future is not None else run(case)


def _cost(case: Case) -> int:
    """A rough guess of a run's length: restores started, and waits pushed past their bound."""
    restores = len(case.change.get("snapshots", {})) or 1
    steps = case.change.get("steps", [])
    restores *= max((step.get("times", 1) for step in steps), default=1) // 4 + 1
    slow = any("timing" in fault for fault in case.change.get("faults", []))
    return restores + 3 * slow


@pytest.fixture(scope="session")
def outcomes(request: pytest.FixtureRequest) -> Iterator[Outcomes]:
    cases = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get("case") if callspec is not None else None
        if isinstance(case, Case):
            cases.append(case)
    workers = min(os.cpu_count() or 1, len(cases))
    if workers < 2:
        yield Outcomes(None, cases)
        return
    # spawn: a fresh interpreter per worker (moto and the simulator's clock use threads).
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        yield Outcomes(pool, cases)
        pool.shutdown(cancel_futures=True)
