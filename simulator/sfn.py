"""Step Functions on the virtual clock: Wait states, Retry intervals and timestamps."""

import datetime as _dt
import types
from collections.abc import Callable
from typing import Any

from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
    timestamp as timestamp_module,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.backend import execution as execution_module

from simulator.clock import VirtualClock
from simulator.patching import Patches

# Called with (event manager, history event type, event details) for every history event.
HistoryListener = Callable[[object, str, dict[str, Any]], None]


_TREES: dict[str, Any] = {}


def _virtual_datetime_module(clock: VirtualClock) -> types.SimpleNamespace:
    """A stand-in for the datetime module whose datetime.now() reads the virtual clock."""

    class VirtualDatetime(_dt.datetime):
        @classmethod
        def now(cls, tz: _dt.tzinfo | None = None) -> "VirtualDatetime":
            moment = clock.now()
            # Naive now() means local time; the simulator's local time is UTC.
            v = moment.astimezone(tz) if tz else moment.replace(tzinfo=None)
            return cls(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, v.tzinfo)

    return types.SimpleNamespace(
        datetime=VirtualDatetime, timezone=_dt.timezone, timedelta=_dt.timedelta, UTC=_dt.UTC
    )


def install(patches: Patches, clock: VirtualClock, listener: HistoryListener) -> None:
    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        if wait_seconds > 0:
            clock.sleep(wait_seconds)

    patches.replace(WaitFunction, "_wait_interval", wait_interval)
    patches.replace(retrier_decl, "time", types.SimpleNamespace(sleep=clock.sleep))
    virtual = _virtual_datetime_module(clock)
    for module in (state_module, timestamp_module, parser_models, execution_module):
        patches.replace(module, "datetime", virtual)
    patches.replace(EventManager, "_get_current_timestamp", staticmethod(clock.now))

    original_add_event = EventManager.add_event

    def add_event(
        self: EventManager,
        context: Any,
        event_type: Any,
        event_details: Any = None,
        timestamp: Any = None,
        update_source_event_id: bool = True,
    ) -> int:
        event_id: int = original_add_event(
            self, context, event_type, event_details, timestamp, update_source_event_id
        )
        listener(self, str(getattr(event_type, "value", event_type)), dict(event_details or {}))
        return event_id

    patches.replace(EventManager, "add_event", add_event)
    patches.replace(AmazonStateLanguageParser, "parse", staticmethod(_parse_once()))


def _parse_once() -> Callable[[str], tuple[Any, Any]]:
    """moto parses the ASL (about 0.4 s for ours) on create and on every execution start.

    The parse tree (immutable) is kept per definition text, across runs; the components
    that run are built fresh from it for each execution, as before.
    """
    original = AmazonStateLanguageParser.parse

    def parse(definition: str) -> tuple[Any, Any]:
        tree = _TREES.get(definition)
        if tree is None:
            program, tree = original(definition)
            _TREES[definition] = tree
            return program, tree
        return Preprocessor().visit(tree), tree

    return parse
