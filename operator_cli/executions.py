"""A restore's execution as an operator follows it: its steps, how long each took, verdicts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from operator_cli.account import Account
from operator_cli.errors import UnknownExecution

RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
_EXECUTION_ARN = re.compile(r"^arn:[\w-]+:states:[\w-]+:\d{12}:execution:[\w-]+:[\w.-]+$")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass
class Step:
    """One state the execution entered; `exited` is None while it is the current step."""

    name: str
    kind: str  # Task, Wait, Choice, Pass, Map...
    entered: datetime
    exited: datetime | None = None

    def seconds(self, now: datetime | None = None) -> float | None:
        end = self.exited or now
        return None if end is None else (end - self.entered).total_seconds()


def execution_name(snapshot_id: str, now: datetime, kind: str = "on-demand") -> str:
    """A name an operator recognises in the console: what, and when (UTC)."""
    return _NAME_UNSAFE.sub("-", f"{kind}-{snapshot_id}-{now:%Y%m%dT%H%M%SZ}")[:80]


def execution_arn(account: Account, name_or_arn: str) -> str:
    """An execution ARN as given, or built from a name and the stack's state machine."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    machine = account.state_machine_arn
    return machine.replace(":stateMachine:", ":execution:", 1) + ":" + name_or_arn


def describe(account: Account, arn: str) -> dict[str, Any]:
    if not _EXECUTION_ARN.match(arn):
        raise UnknownExecution(arn, account.region)
    try:
        return dict(account.sfn.describe_execution(executionArn=arn))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"ExecutionDoesNotExist", "InvalidArn"}:
            raise UnknownExecution(arn, account.region) from exc
        raise


def history(account: Account, arn: str) -> list[dict[str, Any]]:
    """Every history event so far, oldest first."""
    events: list[dict[str, Any]] = []
    pages = account.sfn.get_paginator("get_execution_history").paginate(
        executionArn=arn, PaginationConfig={"PageSize": 1000}
    )
    for page in pages:
        events.extend(dict(e) for e in page["events"])
    return events


def steps(events: list[dict[str, Any]]) -> Iterator[Step]:
    """The states entered, in order, each with its exit once the history has it."""
    open_steps: dict[str, list[Step]] = {}
    for event in events:
        kind = str(event["type"])
        if kind.endswith("StateEntered"):
            name = str(event["stateEnteredEventDetails"]["name"])
            step = Step(name, kind.removesuffix("StateEntered"), event["timestamp"])
            open_steps.setdefault(name, []).append(step)
            yield step
        elif kind.endswith("StateExited"):
            name = str(event["stateExitedEventDetails"]["name"])
            if open_steps.get(name):
                open_steps[name].pop().exited = event["timestamp"]


def started_at(events: list[dict[str, Any]]) -> datetime | None:
    return next((e["timestamp"] for e in events if e["type"] == "ExecutionStarted"), None)


def verdicts(described: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdicts the execution reported: its output, or the cause of RestoreFailed."""
    if described.get("output"):
        found = _json(described["output"])
    else:
        cause = _json(described.get("cause") or "")
        # A Lambda error's cause is its whole payload; RestoreFailed's message is JSON.
        if isinstance(cause, dict) and "errorMessage" in cause:
            cause = _json(str(cause["errorMessage"]))
        found = cause
    listed = found.get("verdicts") if isinstance(found, dict) else None
    return [v for v in listed if isinstance(v, dict)] if isinstance(listed, list) else []


def readable_error(described: dict[str, Any]) -> str:
    error = str(described.get("error") or "")
    cause = _json(described.get("cause") or "")
    if isinstance(cause, dict) and "errorMessage" in cause:
        return f"{error}: {cause['errorMessage']}" if error else str(cause["errorMessage"])
    text = str(described.get("cause") or "")
    return f"{error}: {text}" if error and text else error or text


def request(described: dict[str, Any]) -> dict[str, Any]:
    found = _json(described.get("input") or "")
    return found if isinstance(found, dict) else {}


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None


def clock(seconds: float) -> str:
    """0:09:38"""
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def took(seconds: float) -> str:
    """0.2 s, 38 s, 9 min 38 s, 2 h 05 min"""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
