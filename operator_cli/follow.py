"""Live progress of one execution: each step as it runs and how long it took, until it ends."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from operator_cli import executions
from operator_cli.account import Account
from operator_cli.executions import RUNNING, Step

# Choice states decide in no time: they would only double the lines.
_SILENT_KINDS = frozenset({"Choice"})
# A Map holds the other steps: it is shown when it starts; its time is the whole restore's.
_CONTAINER_KINDS = frozenset({"Map", "Parallel"})
# Looks come every 5 s while steps change, less often (up to 30 s) while one step lasts:
# each look reads the whole history, and the times shown come from it, not from the look.
FIRST_POLL_SECONDS = 5.0
LONGEST_POLL_SECONDS = 30.0


@dataclass
class Follower:
    """Polls the execution's history (bounded by a deadline) and prints what is new."""

    account: Account
    arn: str
    out: TextIO
    timeout_seconds: float
    steps: list[Step] = field(default_factory=list, init=False)
    _printed: int = field(default=0, init=False)  # steps printed for good
    # The current step, printed with "…" (on a terminal, rewritten once it ends).
    _running_shown: tuple[str, datetime] | None = field(default=None, init=False)
    _open_line_length: int = field(default=0, init=False)

    def run(self) -> str:
        """Follow until the execution ends (its status) or the time is up (RUNNING)."""
        deadline = time.monotonic() + self.timeout_seconds
        self.out.write(f"{'elapsed':>9}  {'step':<40} took\n")
        pause, seen = FIRST_POLL_SECONDS, -1
        try:
            while True:
                status = str(executions.describe(self.account, self.arn)["status"])
                # Read after the status: an ended execution's history is complete.
                events = executions.history(self.account, self.arn)
                self._show(events)
                if status != RUNNING or time.monotonic() >= deadline:
                    return status
                pause = (
                    FIRST_POLL_SECONDS
                    if len(events) != seen
                    else min(2 * pause, LONGEST_POLL_SECONDS)
                )
                seen = len(events)
                time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
        finally:
            self._end_running_line()

    def _show(self, events: list[dict[str, Any]]) -> None:
        start = executions.started_at(events)
        if start is None:
            return
        self.steps = [s for s in executions.steps(events) if s.kind not in _SILENT_KINDS]
        for step in self.steps[self._printed :]:
            if step.kind in _CONTAINER_KINDS:
                self._write(step, start, "")
            elif step.exited is not None:
                self._write(step, start, executions.took(step.seconds() or 0.0))
            else:
                if self._running_shown != (step.name, step.entered):
                    self._write(step, start, "…", running=True)
                    self._running_shown = (step.name, step.entered)
                return
            self._printed += 1

    def _write(self, step: Step, start: datetime, took: str, *, running: bool = False) -> None:
        elapsed = executions.clock((step.entered - start).total_seconds())
        line = f"{elapsed:>9}  {step.name:<40} {took}".rstrip()
        interactive = self.out.isatty()
        if interactive and self._running_shown is not None:
            # The current step's line becomes its final line: back to its start, written
            # over, its old end blanked with spaces. No escape codes: the classic Windows
            # console prints them raw unless virtual terminal processing is on.
            self.out.write("\r")
            line = line.ljust(self._open_line_length)
            self._running_shown = None
        # On a terminal the current step's line stays open, to be rewritten when it ends.
        self.out.write(line + ("" if running and interactive else "\n"))
        self._open_line_length = len(line)
        self.out.flush()

    def _end_running_line(self) -> None:
        if self.out.isatty() and self._running_shown is not None:
            self.out.write("\n")

    def time_per_step(self) -> list[tuple[str, int, float]]:
        """(step, times entered, total seconds), longest first: where the time went."""
        totals: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for step in self.steps:
            seconds = step.seconds()
            if seconds is not None and step.kind not in _CONTAINER_KINDS:
                totals[step.name] += seconds
                counts[step.name] += 1
        return sorted(
            ((name, counts[name], total) for name, total in totals.items()),
            key=lambda row: -row[2],
        )
