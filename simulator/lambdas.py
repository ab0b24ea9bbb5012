"""Lambda in process: moto's invoke calls the real handler named in template.yaml, and
EventBridge's asynchronous invocations run in their own participant threads."""

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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from moto.awslambda_simple.models import LambdaSimpleBackend

from simulator.clock import Participant, VirtualClock
from simulator.patching import Patches
from simulator.template import FunctionSpec
from simulator.world import iso_ms, seconds

# How Lambda retries an asynchronous invocation whose handler raised: twice, after about a
# minute and then two more (the delays AWS documents), then the event is dropped.
ASYNC_RETRY_DELAYS = (60.0, 120.0)

# What the calling thread is doing: the function whose handler it runs (its output goes to
# the handler log), and that function's environment.
_handler = threading.local()


def current_function() -> str | None:
    """The logical ID of the function whose handler the calling thread runs, if any."""
    return getattr(_handler, "function", None)


class ProcessEnvironment:
    """What a handler finds process-wide, set for whichever participant holds the turn.

    Handlers of different functions take turns on one process. Each resumes with the
    session's os.environ plus its function's variables, and with every warning counted
    (Lambda logs each one); the simulator's own code keeps the caller's environment and
    warning filters (pytest's `error` included).
    """

    def __init__(self, on_warning: Callable[[str], None] = lambda text: None) -> None:
        self.base = dict(os.environ)
        self._outer_filters = list(warnings.filters)
        self._outer_show = warnings.showwarning
        self._on_warning = on_warning
        self._installed: Mapping[str, str] | None = None
        self._closed = False

    def install(self, overlay: Mapping[str, str] | None) -> None:
        # A handler still running after its run ended must not touch the next one's.
        if overlay is self._installed or self._closed:
            return
        wanted = {**self.base, **(overlay or {})}
        for key in [k for k in os.environ if k not in wanted]:
            del os.environ[key]
        for key, value in wanted.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
        if (overlay is None) != (self._installed is None):
            self._warnings(in_handler=overlay is not None)
        self._installed = overlay

    def _warnings(self, in_handler: bool) -> None:
        # What warnings.catch_warnings does on entry and exit, by turns.
        module: Any = warnings
        if in_handler:
            module.filters = [("always", None, Warning, None, 0)]
            module.showwarning = self._show
        else:
            module.filters = list(self._outer_filters)
            module.showwarning = self._outer_show
        module._filters_mutated()

    def _show(self, message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        self._on_warning(f"{category.__name__}: {message}")

    def resume(self, participant: Participant) -> None:
        self.install(getattr(_handler, "environment", None))

    def close(self) -> None:
        self._installed = {}
        self.install(None)
        self._closed = True


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
    message: str = ""
    asynchronous: bool = False
    # Its duration on the virtual clock, from the invocation's start to the handler's return:
    # the modelled lambda_seconds plus whatever the handler waited (what Lambda bills).
    seconds: float = 0.0


@dataclass(frozen=True)
class AsyncError:
    """An asynchronous invocation whose handler raised: what CloudWatch would show."""

    function: str
    trigger: str
    attempt: int
    at: str
    error: str
    message: str
    retried: bool  # False: the last attempt, the event is dropped


class RoutedStdout(io.TextIOBase):
    """stdout for the session: the simulator prints progress, handler output is kept.

    Powertools loggers keep the stream they were created with, so after the session this
    forwards to whatever sys.stdout is then.
    """

    def __init__(self, sink: Callable[[str], None]) -> None:
        super().__init__()
        self._sink: Callable[[str], None] | None = sink
        self._target: TextIO | Any = sys.stdout

    def close_session(self) -> None:
        self._sink = None

    def write(self, text: str) -> int:
        if self._sink is not None and current_function() is not None:
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
    environment: ProcessEnvironment = field(default_factory=ProcessEnvironment)
    by_name: dict[str, DeployedFunction] = field(default_factory=dict)
    invocations: list[Invocation] = field(default_factory=list)
    async_errors: list[AsyncError] = field(default_factory=list)
    warnings: Counter[str] = field(default_factory=Counter)
    say: Callable[[str], None] = lambda line: None  # the run's progress log
    # Judges a state machine Task's lambda:InvokeFunction before it runs (simulator/iam).
    authorize_invoke: Callable[[str], None] = lambda function_arn: None

    def add(self, function: DeployedFunction) -> None:
        self.by_name[function.name] = function

    def find(self, name_or_arn: str) -> DeployedFunction:
        name = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
        return self.by_name[name]

    def invoke(self, name_or_arn: str, body: Any, response_headers: dict[str, Any]) -> bytes:
        """Invoke as the Lambda API does for Step Functions: errors come back as a payload."""
        function = self.find(name_or_arn)
        self.authorize_invoke(function.arn)
        record = self._call(function, json.loads(body) if body else {})
        if record.error:
            # What Lambda returns for an unhandled error: Step Functions names it errorType.
            response_headers["x-amz-function-error"] = "Unhandled"
        return record.payload

    def invoke_async(self, function_id: str, event: Any, trigger: str) -> None:
        """Lambda's asynchronous invocation, as EventBridge makes it: in a participant of its
        own, retried twice when the handler raises, then dropped."""
        function = self.find(function_id)

        def attempts() -> None:
            for attempt, delay in enumerate((0.0, *ASYNC_RETRY_DELAYS), 1):
                if delay:
                    self.clock.sleep(delay)
                record = self._call(function, event, asynchronous=True)
                if not record.error:
                    return
                retried = attempt <= len(ASYNC_RETRY_DELAYS)
                self.async_errors.append(
                    AsyncError(
                        function.spec.logical_id,
                        trigger,
                        attempt,
                        iso_ms(record.at),
                        record.error,
                        record.message,
                        retried=retried,
                    )
                )
                self.say(
                    f"{function.spec.logical_id} ({trigger}) attempt {attempt}: {record.error}: "
                    f"{record.message}; " + ("Lambda retries it" if retried else "event dropped")
                )

        self.clock.spawn(
            f"lambda {function.spec.logical_id} ({trigger})", attempts, tag=function.spec.logical_id
        )

    @contextmanager
    def _in_handler(self, function: DeployedFunction) -> Iterator[None]:
        before = (current_function(), getattr(_handler, "environment", None))
        _handler.function, _handler.environment = function.spec.logical_id, function.environment
        self.environment.install(function.environment)
        try:
            yield
        finally:
            _handler.function, _handler.environment = before
            self.environment.install(before[1])

    def _call(
        self, function: DeployedFunction, event: Any, asynchronous: bool = False
    ) -> "_Record":
        module_name, attribute = function.spec.handler.rsplit(".", 1)
        began = self.clock.now()
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
        record = _Record(function.spec.logical_id, self.clock.now(), asynchronous=asynchronous)
        self.invocations.append(record)
        with self._in_handler(function):
            try:
                handler = getattr(importlib.import_module(module_name), attribute)
                result = handler(event, context)
                record.payload = json.dumps(result).encode()
            except TypeError as exc:
                if "JSON serializable" in str(exc):
                    record.fail("Runtime.MarshalError", f"Unable to marshal response: {exc}")
                else:
                    record.failed(exc)
            except Exception as exc:
                record.failed(exc)
        record.seconds = (self.clock.now() - began).total_seconds()
        if self.clock.now() > context.deadline:
            # Lambda stops a handler at its Timeout; here it ran on (its calls took effect) and
            # only its answer is replaced, by the error Step Functions would see.
            record.fail(
                "Sandbox.Timedout", f"Task timed out after {function.spec.timeout:.2f} seconds"
            )
        return record


@dataclass
class _Record(Invocation):
    payload: bytes = b""

    def failed(self, exc: Exception) -> None:
        self.fail(type(exc).__name__, str(exc), traceback.format_exception(exc))

    def fail(self, error_type: str, message: str, stack: list[str] | None = None) -> None:
        self.error, self.message = error_type, message
        self.payload = json.dumps(
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
    """Make vss_restore.clock's now and sleep use the virtual clock, wherever they were
    imported by name: a handler that waits inside its invocation lets virtual time pass and
    gives the other participants their turn.

    Returns what to call after the session: modules first imported during it bound the
    virtual functions and must get the real ones back.
    """
    from vss_restore import clock as handler_clock

    def virtual_now() -> datetime:
        return clock.now()

    def virtual_sleep(seconds: float) -> None:
        clock.sleep(seconds)

    virtual = [(handler_clock.now, virtual_now), (handler_clock.sleep, virtual_sleep)]
    real = [(bound, original) for original, bound in virtual]

    def replace(pairs: list[tuple[Any, Any]], set_it: Callable[[Any, str, Any], None]) -> None:
        for name, module in list(sys.modules.items()):
            if name == "vss_restore" or name.startswith("vss_restore."):
                for attribute, value in list(vars(module).items()):
                    for old, new in pairs:
                        if value is old:
                            set_it(module, attribute, new)

    replace(virtual, patches.replace)

    def unbind() -> None:
        replace(real, setattr)

    return unbind
