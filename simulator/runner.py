"""A scenario run: moto with the simulator's patches, the steps, then the operator's view."""

import json
import logging
import os
import queue
import sys
import threading
import time
import types
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from unittest import mock

import boto3
import botocore.endpoint
from botocore.client import ClientCreator
from moto import mock_aws
from moto.ec2.models import ec2_backends
from moto.moto_api._internal import mock_random

from simulator import ec2 as ec2_patches
from simulator import faults as faults_module
from simulator import lambdas, sfn, ssm
from simulator.aliases import AliasError, Aliases
from simulator.clock import VirtualClock
from simulator.deploy import Stack, deploy
from simulator.estate import Estate, VssMarker
from simulator.faults import Faults, parse_fault
from simulator.lambdas import Functions, RoutedStdout
from simulator.patching import Patches
from simulator.report import (
    ExecutionResult,
    Report,
    check_expectations,
    readable_cause,
)
from simulator.scenario import Scenario, ScenarioError, load
from simulator.ssm import Agents
from simulator.template import load_template
from simulator.world import Timing, World, base_event, iso_ms

_QUIET_LOGGERS = ("moto", "botocore", "werkzeug", "aws_lambda_powertools")
_STATE_ENTERED = "StateEntered"
_END_EVENTS = frozenset(
    {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}
)
_FAILURE_EVENTS = frozenset(
    {"ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted", "MapIterationFailed"}
)

Progress = Callable[[str], None]


@dataclass
class _Execution:
    name: str
    arn: str
    started_by: str
    started_at: datetime
    result: ExecutionResult | None = None


@dataclass
class _Events:
    delivered: int = 0
    matched: int = 0
    unmatched: int = 0
    log: list[str] = field(default_factory=list)


class Simulation:
    """Enter to set up moto, the template's stack and the scenario's estate; then run()."""

    def __init__(
        self,
        scenario: Scenario,
        progress: Progress | None = None,
        handler_log: TextIO | None = None,
    ) -> None:
        self.scenario = scenario
        self.progress = progress or (lambda line: None)
        self.handler_log = handler_log
        self.handler_output: list[str] = []
        self.clock = VirtualClock(scenario.start)
        self.faults = Faults([parse_fault(dict(f)) for f in scenario.faults])
        self.world = World(self.clock, Timing.with_overrides(dict(scenario.timing)), self.faults)
        self.world.region = scenario.region
        self.aliases = Aliases(
            scenario.region, self.world.account_id, zlib.crc32(scenario.name.encode())
        )
        self.functions = Functions(self.clock, self.world.timing.lambda_seconds)
        self.agents = Agents(self.world)
        self.executions: list[_Execution] = []
        self.events = _Events()
        self._history: queue.Queue[tuple[datetime, str, dict[str, Any]]] = queue.Queue()
        self._exit = ExitStack()
        self.stack = Stack()
        self.estate: Estate | None = None

    # -- set up, tear down ----------------------------------------------------------------
    def __enter__(self) -> "Simulation":
        try:
            self._enter()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._exit.close()

    def _enter(self) -> None:
        template = load_template(self.scenario.template)
        mock_random.seed(self.aliases.seed)
        # moto's hundreds of built-in AMIs make every EC2 backend slow to build and every
        # snapshot listing long; the simulated instances need none of them.
        self._exit.enter_context(
            mock.patch.dict(os.environ, {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"})
        )
        self._exit.enter_context(
            mock_aws(
                config={
                    "stepfunctions": {"execute_state_machine": True},
                    "lambda": {"use_docker": False},
                }
            )
        )
        self._exit.enter_context(_quiet_loggers())
        # moto builds a region's EC2 backend on first use, AMIs, snapshots and all: before
        # the latency model is on, so that its own volumes are simply there.
        for region in {self.world.region, "us-east-1"}:
            ec2_backends[self.world.account_id][region]
        code_paths = sorted({str(spec.code_uri.resolve()) for spec in template.functions.values()})
        patches = Patches()
        patches.replace(sys, "path", [*code_paths, *sys.path])
        unbind = lambdas.bind_handler_clock(patches, self.clock)
        self._exit.callback(unbind)
        self._exit.callback(patches.close)
        router = RoutedStdout(threading.current_thread(), self._handler_output)
        self._exit.callback(router.close_session)
        patches.replace(sys, "stdout", router)
        patches.replace(botocore.endpoint, "time", types.SimpleNamespace(sleep=self.clock.sleep))
        faults_module.install(patches, self.faults)
        patches.wrap(ClientCreator, "_create_client_class", _cached_client_class)
        ec2_patches.install(patches, self.world)
        ssm.install(patches, self.world, self.agents)
        lambdas.install(patches, self.functions)
        sfn.install(patches, self.clock, self._on_history_event)

        with self.faults.suspended(), self.world.instantly():
            self.estate = Estate(self.world, self.aliases, self._marker(template))
            for spec in self.scenario.instances.values():
                self.estate.create_instance(spec)
            overrides = {
                name: str(self.aliases.substitute(value))
                for name, value in self.scenario.parameters.items()
            }
            self.stack = deploy(template, overrides, self.world, self.functions, self.agents)
            for snapshot in self.scenario.snapshots.values():
                self.estate.ready_made(snapshot)

    def _marker(self, template: Any) -> VssMarker:
        values = template.parameter_values(
            {k: v for k, v in self.scenario.parameters.items() if k in ("VssTagKey", "VssTagValue")}
        )
        return VssMarker(
            values.get("VssTagKey", "ConsistentSnapshot"), values.get("VssTagValue", "WindowsVSS")
        )

    def _handler_output(self, text: str) -> None:
        self.handler_output.append(text)
        if self.handler_log is not None:
            self.handler_log.write(text)

    def _on_history_event(self, manager: object, event_type: str, details: dict[str, Any]) -> None:
        self._history.put((self.clock.now(), event_type, details))

    # -- running --------------------------------------------------------------------------
    def run(self) -> Report:
        for index, step in enumerate(self.scenario.steps, 1):
            try:
                self._step(index, step)
            except AliasError as exc:
                raise ScenarioError(f"step {index}: {exc}") from None
        self._drain_events()
        return self.report()

    def _say(self, text: str) -> None:
        offset = self.clock.elapsed()
        self.progress(
            f"+{int(offset) // 3600}:{int(offset) % 3600 // 60:02d}:{offset % 60:04.1f}  {text}"
        )

    def _step(self, index: int, step: Mapping[str, Any]) -> None:
        assert self.estate is not None
        wait = step.get("wait_for_events", True)
        if "backup" in step:
            with self.faults.suspended():
                made = self.estate.backup(
                    step["backup"],
                    step.get("name"),
                    step.get("volumes"),
                    step.get("events", "single"),
                    step.get("record_shadow_ids", True),
                )
            self._say(
                f"step {index}: backup of {step['backup']}: "
                + ", ".join(f"{a} {s}" for a, s in made.items())
            )
        elif "deliver" in step:
            event = self._event_for(step["deliver"])
            for _ in range(step.get("times", 1)):
                self._say(f"step {index}: deliver {event['detail-type']}")
                self._deliver(event)
        elif "start" in step:
            self._start_on_demand(index, step["start"])
        elif "advance" in step:
            target = self.clock.now() + _seconds(step["advance"])
            self._say(f"step {index}: advance {step['advance']} s")
            self._drain_events(until=target)
            self.clock.advance_to(target)
            wait = False
        elif "set_ping_status" in step:
            change = step["set_ping_status"]
            instance_id = self.aliases.lookup("instance", change["instance"])
            managed = self.world.managed.get(instance_id)
            if managed is None:
                raise ScenarioError(f"step {index}: {change['instance']} is not managed by SSM")
            managed.ping_status = change["status"]
            self._say(f"step {index}: {change['instance']} SSM ping status {change['status']}")
        if wait:
            self._drain_events()

    def _event_for(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        if "raw" in spec:
            raw: dict[str, Any] = self.aliases.substitute(spec["raw"])
            return raw
        if "snapshots" in spec:
            failed = set(spec.get("failed", []))
            pairs = []
            for alias in spec["snapshots"]:
                snapshot_id = self.aliases.lookup("snapshot", alias)
                volume_id = self._source_volume(snapshot_id)
                pairs.append((snapshot_id, volume_id, alias not in failed))
            return ec2_patches.multi_volume_event(self.world, pairs, started=now, ended=now)
        snapshot_id = self.aliases.lookup("snapshot", spec["snapshot"])
        kind = spec.get("event", "createSnapshot")
        result = spec.get("result", "succeeded")
        source = self._source_volume(snapshot_id)
        return base_event(
            self.world,
            "EBS Snapshot Notification",
            now,
            [f"arn:aws:ec2:{self.world.region}::snapshot/{snapshot_id}"],
            {
                "event": kind,
                "result": result,
                "cause": "" if result == "succeeded" else "Simulated failure",
                "request-id": f"{snapshot_id}-redelivered",
                "snapshot_id": f"arn:aws:ec2:{self.world.region}::snapshot/{snapshot_id}",
                "source": f"arn:aws:ec2:{self.world.region}:{self.world.account_id}:volume/"
                f"{source}",
                "startTime": iso_ms(now),
                "endTime": iso_ms(now),
            },
        )

    def _source_volume(self, snapshot_id: str) -> str:
        with self.faults.suspended():
            found = self.ec2_client().describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
        return str(found[0].get("VolumeId", "vol-ffffffff")) if found else "vol-ffffffff"

    def _start_on_demand(self, index: int, spec: Mapping[str, Any]) -> None:
        if "input" in spec:
            execution_input = self.aliases.substitute(spec["input"])
        else:
            execution_input = {"snapshot_id": self.aliases.lookup("snapshot", spec["snapshot"])}
            if "helper" in spec:
                execution_input["helper_instance_id"] = self.aliases.lookup(
                    "instance", spec["helper"]
                )
            if "keep_volume" in spec:
                execution_input["keep_volume"] = spec["keep_volume"]
        machine = next(iter(self.stack.state_machines.values()))
        self._say(f"step {index}: start on demand {json.dumps(execution_input)}")
        self._run_execution(machine, execution_input, "on-demand", spec.get("name"))

    def _drain_events(self, until: datetime | None = None) -> None:
        """Deliver pending events in time order, letting time pass up to each one."""
        while True:
            due = self.world.next_event_due()
            if due is None or (until is not None and due > until):
                return
            self.clock.advance_to(due)
            for event in self.world.pop_due_events():
                self._deliver(event)

    def _deliver(self, event: dict[str, Any]) -> None:
        self.events.delivered += 1
        matched = [rule for rule in self.stack.rules if rule.matches(event)]
        what = _describe_event(event)
        if not matched:
            self.events.unmatched += 1
            self.events.log.append(f"unmatched {what}")
            if event.get("source") != "aws.states":
                self._say(f"event {what}: no rule matches")
            return
        self.events.matched += 1
        for rule in matched:
            self._say(f"event {what} -> {rule.name}")
            self._run_execution(
                rule.state_machine, rule.target_input(event), f"event {rule.name}", None
            )

    def sfn_client(self) -> Any:
        return boto3.client("stepfunctions", region_name=self.world.region)

    def ec2_client(self) -> Any:
        return boto3.client("ec2", region_name=self.world.region)

    def _run_execution(
        self, machine_arn: str, execution_input: Any, started_by: str, name: str | None
    ) -> ExecutionResult:
        if len(self.executions) >= self.scenario.max_executions:
            raise ScenarioError(
                f"more than {self.scenario.max_executions} executions: is the workflow "
                "restarting itself?"
            )
        number = len(self.executions) + 1
        name = name or f"{number:03d}-{started_by.split()[-1]}"[:80]
        with self.faults.suspended():
            arn = self.sfn_client().start_execution(
                stateMachineArn=machine_arn, name=name, input=json.dumps(execution_input)
            )["executionArn"]
        execution = _Execution(name, arn, started_by, self.clock.now())
        self.executions.append(execution)
        status = self._wait_for(execution)
        execution.result = self._execution_result(execution, status)
        self._say(
            f"{name}  {execution.result.status}"
            + (
                f" {execution.result.error}: {_clip(execution.result.cause)}"
                if execution.result.error
                else ""
            )
        )
        self._status_change_event(execution, machine_arn, execution_input)
        return execution.result

    def _wait_for(self, execution: _Execution) -> str:
        """Follow the history events as they come; ask for the status once it has ended."""
        deadline = time.monotonic() + self.scenario.execution_real_seconds
        client = self.sfn_client()
        ended = False
        while True:
            try:
                # Blocking here, not polling, leaves the interpreter to the execution.
                moment, event_type, details = self._history.get(timeout=0.0 if ended else 0.25)
                self._print_event(execution, moment, event_type, details)
                ended = ended or event_type in _END_EVENTS
                continue
            except queue.Empty:
                pass
            with self.faults.suspended():
                status = str(client.describe_execution(executionArn=execution.arn)["status"])
            if status != "RUNNING":
                return status
            if ended:
                time.sleep(0.001)
            if time.monotonic() > deadline:
                with self.faults.suspended():
                    client.stop_execution(
                        executionArn=execution.arn,
                        error="Simulator.RealTimeLimit",
                        cause=f"still running after {self.scenario.execution_real_seconds} s "
                        "of real time",
                    )
                return "ABORTED"

    def _print_event(
        self, execution: _Execution, moment: datetime, event_type: str, details: dict[str, Any]
    ) -> None:
        offset = (moment - self.clock.start).total_seconds()
        prefix = (
            f"+{int(offset) // 3600}:{int(offset) % 3600 // 60:02d}:"
            f"{offset % 60:04.1f}  {execution.name}  "
        )
        if event_type.endswith(_STATE_ENTERED):
            name = (details.get("stateEnteredEventDetails") or {}).get("name", "?")
            self.progress(prefix + name)
        elif event_type.endswith("Failed") or event_type in _FAILURE_EVENTS:
            body: Any = next(iter(details.values()), {}) if details else {}
            if isinstance(body, dict) and body.get("error"):
                self.progress(
                    prefix + f"  ! {event_type} {body.get('error')}: "
                    f"{_clip(str(body.get('cause', '')))}"
                )

    def _execution_result(self, execution: _Execution, status: str) -> ExecutionResult:
        client = self.sfn_client()
        with self.faults.suspended():
            described = client.describe_execution(executionArn=execution.arn)
            transitions = 0
            token: str | None = None
            while True:
                page = client.get_execution_history(
                    executionArn=execution.arn,
                    maxResults=1000,
                    **({"nextToken": token} if token else {}),
                )
                transitions += sum(
                    1 for e in page["events"] if str(e["type"]).endswith(_STATE_ENTERED)
                )
                token = page.get("nextToken")
                if not token:
                    break
        output = described.get("output")
        return ExecutionResult(
            name=execution.name,
            status=status if status == "ABORTED" else str(described["status"]),
            state_transitions=transitions,
            error=described.get("error"),
            cause=described.get("cause"),
            started_by=execution.started_by,
            started_at=iso_ms(execution.started_at),
            virtual_seconds=(self.clock.now() - execution.started_at).total_seconds(),
            output=json.loads(output) if output else None,
        )

    def _status_change_event(
        self, execution: _Execution, machine_arn: str, execution_input: Any
    ) -> None:
        """What Step Functions sends EventBridge when an execution ends."""
        assert execution.result is not None
        now = self.clock.now()
        self.world.queue_event(
            now,
            base_event(
                self.world,
                "Step Functions Execution Status Change",
                now,
                [execution.arn],
                {
                    "executionArn": execution.arn,
                    "stateMachineArn": machine_arn,
                    "name": execution.name,
                    "status": execution.result.status,
                    "startDate": int(execution.started_at.timestamp() * 1000),
                    "stopDate": int(now.timestamp() * 1000),
                    "input": json.dumps(execution_input),
                    "error": execution.result.error,
                    "cause": execution.result.cause,
                },
                source="aws.states",
            ),
        )

    # -- the operator's view --------------------------------------------------------------
    def report(self) -> Report:
        from simulator.verdicts import read_verdicts

        with self.faults.suspended():
            snapshots, volumes_left = read_verdicts(self)
        executions = [e.result for e in self.executions if e.result is not None]
        report = Report(
            scenario=self.scenario.name,
            virtual_seconds=self.clock.elapsed(),
            snapshots=snapshots,
            executions=executions,
            volumes_left=volumes_left,
            ok=False,
            events={
                "delivered": self.events.delivered,
                "matched": self.events.matched,
                "unmatched": self.events.unmatched,
            },
            faults_hit=list(self.faults.hits),
            lambda_invocations=len(self.functions.invocations),
            handler_warnings=[
                f"{message} ({count}x)" for message, count in self.functions.warnings.items()
            ],
            disk_tool_commands=self.agents.disk_tool_commands(),
        )
        report.failures = check_expectations(report, self.scenario.expect)
        if volumes_left:
            report.failures.append(
                "volumes left behind: " + ", ".join(v["volume_id"] for v in volumes_left)
            )
        aborted = [e.name for e in executions if e.status == "ABORTED"]
        if aborted:
            report.failures.append(
                "executions stopped by the real-time limit: " + ", ".join(aborted)
            )
        report.ok = not report.failures
        return report


def _cached_client_class(original: Callable[..., type]) -> Callable[..., type]:
    """Handlers build boto3 clients on every invocation, and botocore a new client class
    each time (hundreds of methods for EC2): the class is the same every time, keep it."""
    classes: dict[tuple[str, str], type] = {}

    def create_client_class(creator: Any, service_name: str, service_model: Any) -> type:
        key = (service_name, str(service_model.api_version))
        if key not in classes:
            classes[key] = original(creator, service_name, service_model)
        return classes[key]

    return create_client_class


def _seconds(value: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=value)


def _clip(text: str | None, width: int = 160) -> str:
    text = " ".join(readable_cause(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _describe_event(event: Mapping[str, Any]) -> str:
    detail = event.get("detail") or {}
    if event.get("detail-type") == "EBS Snapshot Notification":
        snapshot = str(detail.get("snapshot_id", "")).rsplit("/", 1)[-1]
        return f"{detail.get('event')} {detail.get('result')} {snapshot}"
    if isinstance(detail.get("snapshots"), list):
        ids = [str(s.get("snapshot_id", "")).rsplit("/", 1)[-1] for s in detail["snapshots"]]
        return f"{event.get('detail-type')} {' '.join(ids)}"
    return str(event.get("detail-type", "event"))


@contextmanager
def _quiet_loggers() -> Iterator[None]:
    levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def run_scenario(
    source: str | Path | Mapping[str, Any],
    *,
    progress: Progress | None = None,
    handler_log: TextIO | None = None,
) -> Report:
    """Load, run and judge one scenario; the Python API the tests and the CLI use."""
    scenario = load(source)
    with Simulation(scenario, progress, handler_log) as simulation:
        return simulation.run()
