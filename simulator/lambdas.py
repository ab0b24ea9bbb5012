"""Lambda in process: moto's invoke calls the real handler named in template.yaml."""

import importlib
import io
import json
import os
import sys
import threading
import traceback
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from unittest import mock

from moto.awslambda_simple.models import LambdaSimpleBackend

from simulator.clock import VirtualClock
from simulator.patching import Patches
from simulator.template import FunctionSpec
from simulator.world import seconds


@dataclass(frozen=True)
class DeployedFunction:
    spec: FunctionSpec
    name: str
    arn: str
    environment: Mapping[str, str]


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline: datetime
    clock: VirtualClock
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock.now()).total_seconds() * 1000))


@dataclass
class Invocation:
    function: str
    at: datetime
    error: str = ""


class RoutedStdout(io.TextIOBase):
    """stdout for the session: the runner's thread prints progress, handler output is kept.

    Powertools loggers keep the stream they were created with, so after the session this
    forwards to whatever sys.stdout is then.
    """

    def __init__(self, owner: threading.Thread, sink: Callable[[str], None]) -> None:
        super().__init__()
        self._owner = owner
        self._sink: Callable[[str], None] | None = sink
        self._target = sys.stdout

    def close_session(self) -> None:
        self._sink = None

    def write(self, text: str) -> int:
        if self._sink is not None and threading.current_thread() is not self._owner:
            self._sink(text)
            return len(text)
        target = self._target if self._sink is not None else sys.stdout
        if target is self:
            target = sys.__stdout__
        return target.write(text) if target is not None else len(text)

    def flush(self) -> None:
        target = self._target if self._sink is not None else sys.stdout
        if target is not None and target is not self:
            target.flush()


@dataclass
class Functions:
    """The deployed functions, and what their invocations did."""

    clock: VirtualClock
    lambda_seconds: float
    by_name: dict[str, DeployedFunction] = field(default_factory=dict)
    invocations: list[Invocation] = field(default_factory=list)
    warnings: Counter[str] = field(default_factory=Counter)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def add(self, function: DeployedFunction) -> None:
        self.by_name[function.name] = function

    def find(self, name_or_arn: str) -> DeployedFunction:
        name = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
        return self.by_name[name]

    def invoke(self, name_or_arn: str, body: Any, response_headers: dict[str, Any]) -> bytes:
        function = self.find(name_or_arn)
        event = json.loads(body) if body else {}
        module_name, attribute = function.spec.handler.rsplit(".", 1)
        self.clock.sleep(self.lambda_seconds)
        context = LambdaContext(
            function_name=function.name,
            invoked_function_arn=function.arn,
            memory_limit_in_mb=function.spec.memory,
            aws_request_id=str(uuid.uuid4()),
            deadline=self.clock.now() + seconds(function.spec.timeout),
            clock=self.clock,
            log_group_name=f"/aws/lambda/{function.name}",
            log_stream_name="2026/11/25/[$LATEST]simulated",
        )
        record = Invocation(function.spec.logical_id, self.clock.now())
        self.invocations.append(record)
        # One handler at a time: the environment is process-wide.
        with (
            self._lock,
            mock.patch.dict(os.environ, function.environment),
            warnings.catch_warnings(record=True) as caught,
        ):
            # Lambda prints warnings to the log; it does not turn them into errors.
            warnings.simplefilter("always")
            try:
                handler = getattr(importlib.import_module(module_name), attribute)
                result = handler(event, context)
                payload = json.dumps(result).encode()
            except TypeError as exc:
                payload = (
                    _error(
                        response_headers,
                        record,
                        "Runtime.MarshalError",
                        f"Unable to marshal response: {exc}",
                    )
                    if "JSON serializable" in str(exc)
                    else _failed(response_headers, record, exc)
                )
            except Exception as exc:
                payload = _failed(response_headers, record, exc)
        self.warnings.update(f"{w.category.__name__}: {w.message}" for w in caught)
        return payload


def _failed(response_headers: dict[str, Any], record: Invocation, exc: Exception) -> bytes:
    return _error(
        response_headers,
        record,
        type(exc).__name__,
        str(exc),
        traceback.format_exception(exc),
    )


def _error(
    response_headers: dict[str, Any],
    record: Invocation,
    error_type: str,
    message: str,
    stack: list[str] | None = None,
) -> bytes:
    """What Lambda returns for an unhandled error: Step Functions names it errorType."""
    response_headers["x-amz-function-error"] = "Unhandled"
    record.error = error_type
    return json.dumps(
        {"errorType": error_type, "errorMessage": message, "stackTrace": stack or []}
    ).encode()


def install(patches: Patches, functions: Functions) -> None:
    def invoke(
        backend: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        return functions.invoke(function_name, body, response_headers)

    patches.replace(LambdaSimpleBackend, "invoke", invoke)


def bind_handler_clock(patches: Patches, clock: VirtualClock) -> Callable[[], None]:
    """Make vss_restore.clock.now read the virtual clock, wherever it was imported by name.

    Returns what to call after the session: modules first imported during it bound the
    virtual function and must get the real one back.
    """
    from vss_restore import clock as handler_clock

    original = handler_clock.now

    def virtual_now() -> datetime:
        return clock.now()

    for name, module in list(sys.modules.items()):
        if name == "vss_restore" or name.startswith("vss_restore."):
            for attribute, value in list(vars(module).items()):
                if value is original:
                    patches.replace(module, attribute, virtual_now)

    def unbind() -> None:
        for name, module in list(sys.modules.items()):
            if name == "vss_restore" or name.startswith("vss_restore."):
                for attribute, value in list(vars(module).items()):
                    if value is virtual_now:
                        setattr(module, attribute, original)

    return unbind
