"""EventBridge for the simulator: the template's rules decide which events start executions
or invoke functions, and its schedules when functions run."""

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from moto.events.models import EventPattern

from simulator.schedules import Schedule

_SCHEDULED_EVENT_IDS = uuid.UUID("0d2f6a0e-51c3-4b8e-9a47-3c1b5e9d7f20")


def _as_eventbridge_sees(value: Any) -> Any:
    """The event with arrays of objects flattened the way EventBridge matches them.

    EventBridge matches `{"detail": {"snapshots": {"status": ["error"]}}}` when any element
    of the list detail.snapshots has that status; moto's matcher only walks objects, so a
    list of objects becomes an object of lists here.
    """
    if isinstance(value, Mapping):
        return {k: _as_eventbridge_sees(v) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return _merge([_as_eventbridge_sees(item) for item in value])
    return value


def _merge(values: list[Any]) -> Any:
    if values and all(isinstance(v, Mapping) for v in values):
        by_key: dict[str, list[Any]] = {}
        for value in values:
            for key, item in value.items():
                by_key.setdefault(key, []).append(item)
        return {key: _merge(items) for key, items in by_key.items()}
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def _constant(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Rule:
    name: str
    target: str  # a state machine's ARN, or a function's logical ID
    pattern: EventPattern
    input_path: str | None
    constant_input: Any
    invokes_function: bool = False

    @classmethod
    def build(
        cls,
        name: str,
        target: str,
        pattern: Any,
        input_path: str | None,
        constant_input: Any,
        invokes_function: bool = False,
    ) -> "Rule":
        return cls(
            name,
            target,
            EventPattern.load(json.dumps(pattern)),
            input_path,
            constant_input,
            invokes_function,
        )

    @property
    def state_machine(self) -> str:
        return self.target

    def matches(self, event: Mapping[str, Any]) -> bool:
        return self.pattern.matches_event(_as_eventbridge_sees(event))

    def target_input(self, event: Mapping[str, Any]) -> Any:
        """What the target receives: the whole event, unless the rule says otherwise."""
        if self.constant_input is not None:
            return _constant(self.constant_input)
        if not self.input_path or self.input_path == "$":
            return dict(event)
        value: Any = event
        for key in self.input_path.removeprefix("$.").split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        return value


@dataclass
class DeployedSchedule:
    """A schedule invoking a function, and when it fires next."""

    name: str
    function: str  # logical ID
    schedule: Schedule
    constant_input: Any
    enabled: bool
    scheduler: bool
    arn: str
    next_fire: datetime

    def event(self, moment: datetime, region: str, account: str, number: int) -> Any:
        """What the function receives: the Input, else the scheduled event AWS sends."""
        if self.constant_input is not None:
            return _constant(self.constant_input)
        return {
            "version": "0",
            "id": str(uuid.uuid5(_SCHEDULED_EVENT_IDS, f"{self.name}/{number}")),
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler" if self.scheduler else "aws.events",
            "account": account,
            "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [self.arn],
            "detail": "{}" if self.scheduler else {},
        }
