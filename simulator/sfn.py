"""Step Functions on the virtual clock: Wait states, Retry intervals, timestamps, and the
interpreter's threads taking their turns as the clock's participants."""

import datetime as _dt
import itertools
import random
import threading
import types
from collections.abc import Callable
from typing import Any

from moto.core.exceptions import AWSError
from moto.core.responses import EmptyResult
from moto.stepfunctions.parser import api as parser_api
from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.asl.component.common.retry import (
    jitter_strategy_decl,
    retrier_decl,
)
from moto.stepfunctions.parser.asl.component.program import program as program_module
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
    inline_iteration_component,
    iteration_worker,
    job,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    map_run_record,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import (
    branch_worker,
    branches_decl,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
    timestamp as timestamp_module,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval import environment as environment_module
from moto.stepfunctions.parser.asl.eval.callback import callback as callback_module
from moto.stepfunctions.parser.asl.eval.callback.callback import (
    CallbackConsumerTimeout,
    CallbackNotifyConsumerError,
    CallbackPoolManager,
)
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.backend import execution as execution_module
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
    Execution,
)
from moto.stepfunctions.responses import StepFunctionResponse

from simulator.clock import Participant, VirtualClock
from simulator.patching import Patches

# Called with (event manager, history event type, event details) for every history event.
HistoryListener = Callable[[object, str, dict[str, Any]], None]
# Called with moto's execution when it has ended (its status, output, error are set).
EndListener = Callable[[Execution], None]

# What each interpreter module waits for on its threading.Event, in a deadlock's words.
_EVENTS = {
    job: "its Map iterations",
    execute_state: "its task",
    branches_decl: "its Parallel branches",
    environment_module: "the execution's state",
    map_run_record: "a Map run update",
    state_task_service_callback: "a task token",
}


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


def _threading(clock: VirtualClock, what: str) -> types.SimpleNamespace:
    """A stand-in for the threading module: its threads and events belong to the clock."""
    return types.SimpleNamespace(
        Thread=clock.Thread,
        Event=lambda: clock.Event(what),
        Lock=threading.Lock,
        RLock=threading.RLock,
        Condition=threading.Condition,
    )


def _thread_namer() -> Callable[[Any, Participant | None], tuple[str, str]]:
    """Names for the interpreter's threads: the execution they work for, and what they do."""
    numbers = itertools.count(1)

    def name(target: Any, parent: Participant | None) -> tuple[str, str]:
        owner = getattr(target, "__self__", None)
        if isinstance(owner, execution_worker.ExecutionWorker):
            execution = owner._evaluation_details.execution_details.name
            return f"execution {execution}", str(execution)
        qualname = getattr(target, "__qualname__", "")
        kind = "program"
        if isinstance(owner, iteration_worker.IterationWorker):
            kind = "map iteration"
        elif "_exec_and_notify" in qualname:
            kind = "task"
        elif "_thread_routine" in qualname:
            kind = "branch"
        elif "task_token" in qualname:
            kind = "task token"
        tag = parent.tag if parent else ""
        return f"{tag or 'execution'} {kind}#{next(numbers)}", tag

    return name


def install(
    patches: Patches,
    clock: VirtualClock,
    listener: HistoryListener,
    on_end: EndListener,
    seed: int,
) -> None:
    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        # As in AWS, stopping the execution ends a Wait at once.
        deadline = clock.now() + _dt.timedelta(seconds=wait_seconds)
        while env.is_running() and clock.now() < deadline:
            env.program_state_event.wait((deadline - clock.now()).total_seconds())

    patches.replace(WaitFunction, "_wait_interval", wait_interval)
    patches.replace(retrier_decl, "time", types.SimpleNamespace(sleep=clock.sleep))
    # FULL jitter draws from `random`: seeded, the same scenario waits the same.
    patches.replace(jitter_strategy_decl, "random", random.Random(seed))
    for module in (program_module, inline_iteration_component, branch_worker, *_EVENTS):
        patches.replace(module, "threading", _threading(clock, _EVENTS.get(module, "a thread")))
    for module in (execute_state, execution_worker):
        patches.replace(module, "Thread", clock.Thread)
    patches.replace(callback_module, "Event", lambda: clock.Event("a callback"))
    _close_answered_tokens(patches)
    _raise_closed_tasks_as_aws(patches)
    _keep_the_failures_cause(patches)
    clock.namer = _thread_namer()

    original_set_error = environment_module.Environment.set_error

    def set_error(self: Any, error: Any) -> None:
        # StopExecution is final in AWS. moto's inline Map turns a stop into an error (its
        # iteration raises with the stop's text where error details belong, and the Map's
        # error handling then fails): without this the execution would end FAILED.
        if not isinstance(self.program_state(), ProgramStopped):
            original_set_error(self, error)

    patches.replace(environment_module.Environment, "set_error", set_error)

    original_stop = execution_module.Execution.stop

    def stop(self: Any, stop_date: Any, error: Any, cause: Any) -> None:
        original_stop(self, stop_date, error, cause)
        # StopExecution ends the execution at once in AWS, a task waiting for its token
        # included; moto's stays waiting until the token is answered or times out.
        worker = self.exec_worker
        environment = getattr(worker, "env", None) if worker is not None else None
        if environment is not None:
            for endpoint in list(environment.callback_pool_manager._pool.values()):
                endpoint.interrupt_all()

    patches.replace(execution_module.Execution, "stop", stop)

    original_terminated = BaseExecutionWorkerCommunication.terminated

    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        original_terminated(self)
        on_end(self.execution)

    patches.replace(BaseExecutionWorkerCommunication, "terminated", terminated)
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
    _install_task_tokens(patches)


def _install_task_tokens(patches: Patches) -> None:
    """`.waitForTaskToken` tasks as in AWS: a token per attempt, and a dead token refused.

    moto makes a task's token once, when the state is entered: a Retry (after
    States.Timeout, say) would wait on the finished token again and time out at once.
    Step Functions gives each attempt its own token (check on a real account: no AWS page
    says so outright; a task's token is documented as the attempt's `$$.Task.Token`).
    And SendTaskSuccess for a task that waits no more (timed out, completed, stopped) fails
    with TaskTimedOut in AWS; moto accepts it silently while the execution runs.
    """
    original_eval_execution = state_task_service_callback.StateTaskServiceCallback._eval_execution

    def eval_execution(self: Any, env: Any) -> None:
        if self.resource.condition == ResourceCondition.WaitForTaskToken:
            env.callback_pool_manager.add(env.states.context_object.update_task_token())
        original_eval_execution(self, env)

    patches.replace(
        state_task_service_callback.StateTaskServiceCallback, "_eval_execution", eval_execution
    )

    original_notify = CallbackPoolManager.notify

    def notify(self: CallbackPoolManager, callback_id: str, outcome: Any) -> bool:
        endpoint = self.get(callback_id)
        # The endpoint's event is set once the task has an outcome or has ended.
        if endpoint is not None and endpoint._notify_event.is_set():
            raise CallbackNotifyConsumerError(CallbackConsumerTimeout())
        return bool(original_notify(self, callback_id, outcome))

    patches.replace(CallbackPoolManager, "notify", notify)


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


def _close_answered_tokens(patches: Patches) -> None:
    """A task token answers once, as in AWS: SendTaskSuccess or SendTaskFailure for a task
    that has been answered, has timed out or has ended is refused with TaskTimedOut ("the
    task associated with the token has already been closed"). moto would take it again."""
    original = CallbackPoolManager.notify

    def notify(self: CallbackPoolManager, callback_id: Any, outcome: Any) -> bool:
        endpoint = self.get(callback_id)
        # The endpoint's event is set by the first answer, and when its task stops waiting.
        if endpoint is not None and endpoint._notify_event.is_set():
            raise CallbackNotifyConsumerError(CallbackConsumerTimeout())
        answered: bool = original(self, callback_id, outcome)
        return answered

    patches.replace(CallbackPoolManager, "notify", notify)


# What Step Functions says when a token's task is closed or unknown (API Reference,
# SendTaskSuccess / SendTaskFailure errors).
_CLOSED_TASK_MESSAGES = {
    "TaskTimedOut": "Task Timed Out: 'Provided task does not exist anymore'",
    "TaskDoesNotExist": "Task Does Not Exist: 'Provided task does not exist'",
    "InvalidToken": "Invalid Token: 'Invalid token'",
}


def _raise_closed_tasks_as_aws(patches: Patches) -> None:
    """moto's parser raises TaskTimedOut, TaskDoesNotExist and InvalidToken without the
    message its base class requires (a TypeError, and the caller sees a 500): raise them with
    AWS's code and message, as SendTaskSuccess/SendTaskFailure answer a closed task."""
    for name, message in _CLOSED_TASK_MESSAGES.items():
        cls = getattr(parser_api, name)

        def init(self: Any, text: str = message, code: str = name) -> None:
            AWSError.__init__(self, text, exception_type=code, status=400)

        patches.replace(cls, "__init__", init)


def _keep_the_failures_cause(patches: Patches) -> None:
    """moto's SendTaskFailure drops `cause`; AWS hands it to the task's Catch as Cause."""

    def send_task_failure(response: StepFunctionResponse) -> Any:
        # The parser's backend (executions run) takes the cause; moto's type says otherwise.
        backend: Any = response.stepfunction_backend
        backend.send_task_failure(
            response._get_param("taskToken"),
            error=response._get_param("error"),
            cause=response._get_param("cause"),
        )
        return EmptyResult()

    patches.replace(StepFunctionResponse, "send_task_failure", send_task_failure)
