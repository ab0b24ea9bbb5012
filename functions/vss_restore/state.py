"""Reading the workflow state that Step Functions hands each handler, with clear errors."""

import re
from collections.abc import Mapping
from typing import Any

from vss_restore.errors import InvalidRequest

SNAPSHOT_ID = re.compile(r"^snap-[0-9a-f]{8,17}$")
VOLUME_ID = re.compile(r"^vol-[0-9a-f]{8,17}$")
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
COMMAND_ID = re.compile(r"^[0-9a-f-]{36}$")


def lookup(state: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or InvalidRequest naming the path that is missing."""
    value: Any = state
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            raise InvalidRequest(f"the workflow state has no {path!r}")
        value = value[key]
    return value


def text(state: Mapping[str, Any], path: str, pattern: re.Pattern[str] | None = None) -> str:
    value = lookup(state, path)
    if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
        raise InvalidRequest(f"{path} is {value!r}, not a valid value")
    return value


def optional(state: Mapping[str, Any], path: str) -> Any:
    try:
        return lookup(state, path)
    except InvalidRequest:
        return None
