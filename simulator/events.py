"""EventBridge for the simulator: the template's rules decide which events start executions."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moto.events.models import EventPattern


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


@dataclass(frozen=True)
class Rule:
    name: str
    state_machine: str
    pattern: EventPattern
    input_path: str | None
    constant_input: Any

    @classmethod
    def build(
        cls,
        name: str,
        state_machine: str,
        pattern: Any,
        input_path: str | None,
        constant_input: Any,
    ) -> "Rule":
        return cls(
            name, state_machine, EventPattern.load(json.dumps(pattern)), input_path, constant_input
        )

    def matches(self, event: Mapping[str, Any]) -> bool:
        return self.pattern.matches_event(_as_eventbridge_sees(event))

    def target_input(self, event: Mapping[str, Any]) -> Any:
        """What the target receives: the whole event, unless the rule says otherwise."""
        if self.constant_input is not None:
            return (
                json.loads(self.constant_input)
                if isinstance(self.constant_input, str)
                else self.constant_input
            )
        if not self.input_path or self.input_path == "$":
            return dict(event)
        value: Any = event
        for key in self.input_path.removeprefix("$.").split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        return value
