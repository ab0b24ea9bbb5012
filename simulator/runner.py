"""A scenario run: moto with the simulator's patches, the steps, then the operator's view."""

import itertools
import json
import logging
import math
import os
import random
import sys
import time
import types
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from unittest import mock

import boto3
import botocore.endpoint
import botocore.retryhandler
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.ec2.models import ec2_backends
from moto.moto_api._internal import mock_random
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from simulator import ebs as ebs_patches
from simulator import ec2 as ec2_patches
from simulator import faults as faults_module
from simulator import helpers, instance_loss, lambdas, quotas, sfn, speedups, ssm
from simulator.aliases import AliasError, Aliases
from simulator.clock import Participant, VirtualClock
from simulator.deploy import Stack, deploy, rule_name
from simulator.dynamodb import LaggingIndexes
from simulator.estate import WITHOUT_BACKUP_POLICY, Estate, VssMarker
from simulator.events import DeployedSchedule, Rule
from simulator.faults import Faults, parse_fault
from simulator.iam.enforce import Authorizer
from simulator.iam.requests import Account
from simulator.iam.stack import Principal
from simulator.iam.stack import Stack as IamStack
from simulator.lambdas import Functions, ProcessEnvironment, RoutedStdout, current_function
from simulator.nights import Nights, NightsResult
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
_FAILURE_EVENTS = frozenset(
    {"ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted", "MapIterationFailed"}
)

Progress = Callable[[str], None]


@dataclass
class _Execution:
    name: str
    arn: str
    machine_arn: str
    started_by: str
    started_at: datetime
    real_started: float
    input: Any
    ended: bool = False
    stopped_for_time: bool = False  # by the real-time limit
    result: ExecutionResult | None = None


@dataclass
class _Events:
    delivered: int = 0
    matched: int = 0
    unmatched: int = 0
    log: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # deliveries IAM refused


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
        self.clock.stuck_seconds = scenario.execution_real_seconds
        self.faults = Faults([parse_fault(dict(f)) for f in scenario.faults], current_function)
        self.world = World(self.clock, Timing.with_overrides(dict(scenario.timing)), self.faults)
        self.world.region = scenario.region
        # Unset: no limit while the estate is made, then the account default (simulator/quotas.py).
        quota = scenario.quotas.get("on_demand_standard_vcpus")
        self.world.standard_vcpu_quota = math.inf if quota is None else float(quota)
        self.aliases = Aliases(
            scenario.region, self.world.account_id, zlib.crc32(scenario.name.encode())
        )
        self.functions = Functions(self.clock, self.world.timing.lambda_seconds)
        self.functions.say = self._say
        self.agents = Agents(self.world)
        fleet = scenario.fleet
        self.fleet = helpers.Fleet(
            full_zones=set(fleet.get("zones_without_capacity", [])),
            never_online=int(fleet.get("never_online", 0)),
            boot_tests_never_online=int(fleet.get("boot_tests_never_online", 0)),
        )
        self.executions: list[_Execution] = []
        self._by_arn: dict[str, _Execution] = {}
        self.events = _Events()
        self._fired = itertools.count(1)
        self._driver: Participant | None = None
        self._exit = ExitStack()
        self.stack = Stack()
        self.estate: Estate | None = None
        self.authorizer: Authorizer | None = None
        self._events: Any = None  # EventBridge, as the operator sees it (rules' state)
        self._delivering = False
        # Schedules (by name) that do not fire for now, though enabled (simulator/nights.py).
        self.paused_schedules: set[str] = set()
        self.nights: NightsResult | None = None

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
        # AWS's own images (each with its snapshot) were there before the account's story.
        helpers.seed(self.world)
        code_paths = sorted({str(spec.code_uri.resolve()) for spec in template.functions.values()})
        # Handlers take turns on one process: each resumes with its own function's variables.
        self.functions.environment = ProcessEnvironment(
            lambda warning: self.functions.warnings.update([warning])
        )
        self._exit.callback(self.functions.environment.close)
        self.clock.on_resume.append(self.functions.environment.resume)
        patches = Patches()
        patches.replace(sys, "path", [*code_paths, *sys.path])
        unbind = lambdas.bind_handler_clock(patches, self.clock)
        self._exit.callback(unbind)
        self._exit.callback(patches.close)
        router = RoutedStdout(self._handler_output)
        self._exit.callback(router.close_session)
        patches.replace(sys, "stdout", router)
        patches.replace(botocore.endpoint, "time", types.SimpleNamespace(sleep=self.clock.sleep))
        # botocore's retry backoff (legacy mode, the handlers' default) draws its jitter
        # from the process-wide `random`: seeded from the scenario, the same scenario waits
        # the same, whatever else the process drew before.
        patches.replace(botocore.retryhandler, "random", random.Random(self.aliases.seed))
        faults_module.install(patches, self.faults)
        speedups.install(patches)
        ec2_patches.install(patches, self.world)
        ebs_patches.install(patches, self.world)
        # The quota first: the fleet's launch (around it) answers a retried token before it.
        quotas.install(patches, self.world)
        helpers.install(patches, self.world, self.fleet)
        instance_loss.install(self.world, self.fleet)
        LaggingIndexes(self.clock.now).install(patches)
        ssm.install(patches, self.world, self.agents)
        lambdas.install(patches, self.functions)
        sfn.install(
            patches,
            self.clock,
            self._on_history_event,
            self._on_execution_end,
            seed=self.aliases.seed,
        )

        with self.faults.suspended(), self.world.instantly():
            self.estate = Estate(self.world, self.aliases, self._marker(template))
            for spec in self.scenario.instances.values():
                self.estate.create_instance(spec)
            if "on_demand_standard_vcpus" not in self.scenario.quotas:
                self.world.standard_vcpu_quota = quotas.account_default(self.estate.backend)
            overrides = {
                name: str(self.aliases.substitute(value))
                for name, value in self.scenario.parameters.items()
            }
            defaults = template.parameter_values({})
            if overrides.get("HelperMode", defaults.get("HelperMode")) == "fleet":
                overrides = self._fleet_network(overrides)
            self.stack = deploy(template, overrides, self.world, self.functions, self.agents)
            self.authorizer = self._authorize(patches)
            for snapshot in self.scenario.snapshots.values():
                self.estate.ready_made(snapshot)

    def _fleet_network(self, overrides: dict[str, str]) -> dict[str, str]:
        """The operator's VPC and subnets for the fleet, one per zone the scenario lists."""
        region = self.world.region
        zones = list(self.scenario.fleet.get("zones", [f"{region}a", f"{region}b"]))
        vpc, subnets, endpoints_group = helpers.network(self.world, zones)
        found = {"HelperVpcId": vpc, "HelperSubnetIds": ",".join(subnets)}
        if overrides.get("BootTest", "Never") != "Never":
            # The operator names the endpoints' group (a scenario may set it "" for none).
            found["BootTestEndpointSecurityGroupId"] = endpoints_group
        return {**found, **overrides}

    def _authorize(self, patches: Patches) -> Authorizer:
        """From here on every call of a handler, the state machine, an EventBridge rule or the
        backup is judged against its own role in the synthesized template (simulator/iam)."""
        policies = IamStack(
            parameters=self.stack.parameters,
            names=self.stack.names,
            path=self.scenario.template,
            region=self.world.region,
            account=self.world.account_id,
        )
        authorizer = Authorizer.for_stack(
            policies,
            Account(self.world.account_id, self.world.region),
            self.stack.state_machines,
        )
        authorizer.install(patches)
        authorizer.install_server(patches)
        self.functions.authorize_invoke = self._authorize_task_invoke
        assert self.estate is not None
        self.estate.authorizer = authorizer
        self.estate.backup_log_group = self.stack.names.get("BackupLogs", "")
        # A backed-up instance whose role lacks the policy calls with no permission at all.
        authorizer.principals[WITHOUT_BACKUP_POLICY] = Principal(WITHOUT_BACKUP_POLICY, (), (), ())
        if self.stack.outputs.get("BackupInstancePolicyArn"):
            self.estate.attach_backup_policy(self.stack.outputs["BackupInstancePolicyArn"])
        return authorizer

    def _authorize_task_invoke(self, function_arn: str) -> None:
        """A Task's lambda:InvokeFunction, made with the executing state machine's role."""
        assert self.authorizer is not None
        me = self.clock.current()
        name = me.tag if me is not None else ""
        machines = [e.machine_arn for e in self.executions if e.name == name]
        if not machines:  # started by someone else (a handler, the CLI): ask Step Functions
            backend = stepfunctions_parser_backends[self.world.account_id][self.world.region]
            machines = [
                machine.arn
                for machine in backend.state_machines
                if any(x.name == name for x in machine.executions)
            ]
        if len(machines) != 1:
            raise RuntimeError(f"which state machine invokes {function_arn}? ({name!r})")
        self.authorizer.authorize_invoke(machines[0], function_arn)

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

    # -- running --------------------------------------------------------------------------
    def run(self) -> Report:
        """Run the steps as the clock's "scenario" participant, while EventBridge (and the
        schedules) deliver in participants of their own; then the operator's view."""
        with self.clock.driving("scenario") as self._driver:
            self.start_eventbridge()
            if any(s.enabled for s in self.stack.schedules):
                self.clock.spawn("schedules", self._schedules, service=True)
            for index, step in enumerate(self.scenario.steps, 1):
                try:
                    self._step(index, step)
                except AliasError as exc:
                    raise ScenarioError(f"step {index}: {exc}") from None
            self._wait_quiet("waiting for the executions to end")
        self._delivering = False  # EventBridge stopped with the run; an operator restarts it
        return self.report()

    @contextmanager
    def operate(self, name: str = "operator") -> Iterator[None]:
        """The calling thread takes part in the virtual clock, as the scenario's steps do, for
        someone acting on the account by hand (the CLI's tests): executions it starts run while
        it sleeps (`clock.sleep`), its deadlines are virtual, and on leaving it waits until
        every execution and invocation has ended. EventBridge delivers meanwhile: the commands'
        and snapshots' events complete the tasks waiting for them."""
        with self.clock.driving(name) as operator:
            self.start_eventbridge()
            yield
            self.clock.wait(
                lambda: not self.clock.busy(besides=operator),
                reason=f"the {name}'s executions to end",
            )
        self._delivering = False

    def say(self, text: str) -> None:
        """A line of the run's progress, stamped with the virtual time."""
        self._say(text)

    def _say(self, text: str) -> None:
        offset = self.clock.elapsed()
        self.progress(
            f"+{int(offset) // 3600}:{int(offset) % 3600 // 60:02d}:{offset % 60:04.1f}  {text}"
        )

    def _step(self, index: int, step: Mapping[str, Any]) -> None:
        assert self.estate is not None
        if "at" in step:
            at = self.clock.start + timedelta(seconds=step["at"])
            if at < self.clock.now():
                raise ScenarioError(
                    f"step {index}: at {step['at']} s, but the clock is at "
                    f"{self.clock.elapsed():g} s already"
                )
            self._pass_time_to(at, f"step {index}: waiting until {step['at']} s")
        wait = step.get("wait_for_events", True)
        if "backup" in step:
            with self.faults.suspended():
                made = self.estate.backup(
                    step["backup"],
                    step.get("name"),
                    step.get("volumes"),
                    step.get("events", "single"),
                    step.get("record_shadow_ids", True),
                    step.get("delete_shadows", True),
                )
            self._say(
                f"step {index}: backup of {step['backup']}: "
                + ", ".join(f"{a} {s}" for a, s in made.items())
            )
        elif "deliver" in step:
            event = self._event_for(step["deliver"])
            # Every copy at the same instant: their executions start together.
            for _ in range(step.get("times", 1)):
                self._say(f"step {index}: deliver {event['detail-type']}")
                self._deliver(event)
        elif "start" in step:
            self._start_on_demand(index, step["start"])
        elif "advance" in step:
            self._say(f"step {index}: advance {step['advance']} s")
            self._pass_time_to(
                self.clock.now() + timedelta(seconds=step["advance"]),
                f"step {index}: advancing {step['advance']} s",
            )
        elif "set_ping_status" in step:
            change = step["set_ping_status"]
            instance_id = self.aliases.lookup("instance", change["instance"])
            managed = self.world.managed.get(instance_id)
            if managed is None:
                raise ScenarioError(f"step {index}: {change['instance']} is not managed by SSM")
            # What was due before the change happened under the old status.
            self.world.settle()
            managed.ping_status = change["status"]
            self._say(f"step {index}: {change['instance']} SSM ping status {change['status']}")
        elif "reboot" in step:
            instance_id = self.aliases.lookup("instance", step["reboot"])
            host = self.world.host(instance_id)
            if host is None:
                raise ScenarioError(f"step {index}: {step['reboot']} is not a Windows instance")
            self.world.settle()
            running = [
                i.command_id
                for i in self.agents.log
                if i.instance_id == instance_id and i.started_at is not None and not i.finished
            ]
            if running:
                # What a reboot does to a running command is not modelled: refused, not guessed.
                raise ScenarioError(
                    f"step {index}: {step['reboot']} reboots while command(s) "
                    f"{', '.join(running)} run on it: not modelled, choose another moment"
                )
            host.reboot(f"step {index}")
            self._say(f"step {index}: {step['reboot']} reboots")
        elif "stop_instance" in step or "terminate_instance" in step:
            how = "stop" if "stop_instance" in step else "terminate"
            alias = step[f"{how}_instance"]
            instance_id = self.aliases.lookup("instance", alias)
            self.world.settle()
            try:
                instance_loss.lose(self.world, self.fleet, instance_id, how, self.clock.now())
            except ValueError as exc:
                raise ScenarioError(f"step {index}: {exc}") from exc
            self._say(f"step {index}: someone {how}s {alias}")
        elif "disable_key" in step:
            self._disable_key(index, step["disable_key"])
        elif "abort" in step:
            self._abort(index, step["abort"])
        elif "nights" in step:
            if self.nights is not None:
                raise ScenarioError(f"step {index}: a scenario has one nights step at most")
            self.nights = Nights(self, step["nights"]).run()
        elif "run_schedule" in step:
            self._run_schedule(index, step["run_schedule"])
        elif "wait" in step:
            self._say(f"step {index}: wait for the {step['wait']} to end")
        if wait:
            self._wait_quiet(f"step {index}: waiting for the executions to end")

    # -- time passing ---------------------------------------------------------------------
    def _quiet(self) -> bool:
        """No execution or invocation running, no event waiting to be delivered."""
        return not self.clock.busy(besides=self._driver) and self.world.next_event_due() is None

    def _wait_quiet(self, reason: str) -> None:
        while self.clock.wait(self._quiet, reason=reason, real_deadline=self._real_deadline()) == (
            "deadline"
        ):
            self._stop_overdue()

    def pass_time_to(self, moment: datetime, reason: str) -> None:
        """Let virtual time pass until `moment`, everything else running meanwhile."""
        self._pass_time_to(moment, reason)

    def _pass_time_to(self, moment: datetime, reason: str) -> None:
        while self.clock.now() < moment:
            woke = self.clock.wait(
                None, reason=reason, wake_at=moment, real_deadline=self._real_deadline()
            )
            if woke == "deadline":
                self._stop_overdue()

    def _real_deadline(self) -> float | None:
        """When the first running execution reaches the real-time limit."""
        limit = self.scenario.execution_real_seconds
        return min(
            (
                e.real_started + limit
                for e in self.executions
                if not e.ended and not e.stopped_for_time
            ),
            default=None,
        )

    def _overdue(self) -> list[_Execution]:
        cutoff = time.monotonic() - self.scenario.execution_real_seconds
        return [
            e
            for e in self.executions
            if not e.ended and not e.stopped_for_time and e.real_started <= cutoff
        ]

    def _stop_overdue(self) -> None:
        for execution in self._overdue():
            execution.stopped_for_time = True
            self._say(f"{execution.name}: stopped by the real-time limit")
            with self.faults.suspended():
                self.sfn_client().stop_execution(
                    executionArn=execution.arn,
                    error="Simulator.RealTimeLimit",
                    cause=f"still running after {self.scenario.execution_real_seconds} s "
                    "of real time",
                )

    # -- EventBridge ----------------------------------------------------------------------
    def start_eventbridge(self) -> None:
        """Deliver the events AWS sends (snapshots, commands, executions) as they fall due,
        for as long as the clock runs; run() and operate() do. Once per simulation."""
        if not self._delivering:
            self._delivering = True
            self.clock.spawn("EventBridge", self._eventbridge, service=True)

    def _eventbridge(self) -> None:
        """Deliver each event when it is due, as long as the run lasts."""
        while True:
            # Also when a command ends: SSM's status-change event is queued as it happens.
            self.clock.wait(None, reason="no event pending", wake_at=self.world.next_change_due)
            self.world.settle()
            for event in self.world.pop_due_events():
                self._deliver(event)

    def _schedules(self) -> None:
        """Fire each enabled schedule when virtual time passes its moment."""
        enabled = [s for s in self.stack.schedules if s.enabled]
        while True:
            due = min(s.next_fire for s in enabled)
            self.clock.sleep_until(due, idle=True, reason="the next schedule")
            now = self.clock.now()
            for schedule in enabled:
                if schedule.next_fire <= now:
                    if schedule.name not in self.paused_schedules:
                        self._fire(schedule)
                    schedule.next_fire = schedule.schedule.next_after(now)

    def _fire(self, schedule: DeployedSchedule) -> None:
        event = schedule.event(
            self.clock.now(), self.world.region, self.world.account_id, next(self._fired)
        )
        self._say(
            f"schedule {schedule.name} ({schedule.schedule.expression}) -> {schedule.function}"
        )
        if self._may_invoke(schedule.name, schedule.function):
            self.functions.invoke_async(schedule.function, event, f"schedule {schedule.name}")

    def _disable_key(self, index: int, volume_alias: str) -> None:
        """KMS DisableKey on the volume's customer managed key (an operator's act, so the
        owner's call, not judged by the stack's IAM)."""
        volume_id = self.aliases.lookup("volume", volume_alias)
        key_id = (
            self.ec2_client().describe_volumes(VolumeIds=[volume_id])["Volumes"][0].get("KmsKeyId")
        )
        kms = boto3.client("kms", region_name=self.world.region)
        key: dict[str, Any] = dict(kms.describe_key(KeyId=key_id)["KeyMetadata"]) if key_id else {}
        if key.get("KeyManager") != "CUSTOMER":
            raise ScenarioError(
                f"step {index}: {volume_alias} is not encrypted with a customer managed key"
            )
        with self.faults.suspended():
            kms.disable_key(KeyId=str(key["KeyId"]))  # moto takes the ID only, KMS the ARN too
        self._say(f"step {index}: KMS key of {volume_alias} disabled ({key_id})")

    def fire_schedule(self, name: str) -> None:
        """Fire the schedules that invoke the function `name` (logical ID) or are named so,
        as EventBridge does when their time comes: for a test operating the account."""
        self._run_schedule(0, name)

    def _run_schedule(self, index: int, name: str) -> None:
        found = [s for s in self.stack.schedules if name in (s.function, s.name)]
        if not found:
            raise ScenarioError(f"step {index}: no schedule of the template invokes {name!r}")
        for schedule in found:
            self._say(f"step {index}: run schedule {schedule.name}")
            self._fire(schedule)

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

    def _enabled(self, rule: Rule) -> bool:
        """A rule the operator disabled in EventBridge starts nothing (as in AWS)."""
        if rule.invokes_function:
            return True
        if self._events is None:
            self._events = boto3.client("events", region_name=self.world.region)
        with self.faults.suspended():
            state = self._events.describe_rule(Name=rule_name(rule.name))["State"]
        return bool(state == "ENABLED")

    def _deliver(self, event: dict[str, Any]) -> None:
        self.events.delivered += 1
        matched = [rule for rule in self.stack.rules if rule.matches(event) and self._enabled(rule)]
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
            if rule.invokes_function:
                if self._may_invoke(rule.name, rule.target):
                    self.functions.invoke_async(
                        rule.target, rule.target_input(event), f"rule {rule.name}"
                    )
                continue
            assert self.authorizer is not None
            machine = next(k for k, v in self.stack.state_machines.items() if v == rule.target)
            role = self.authorizer.rule_role(self.authorizer.rule_named(rule.name, machine))
            with self.authorizer.acting(role):
                try:
                    self._start_execution(
                        rule.target, rule.target_input(event), f"event {rule.name}", None
                    )
                except ClientError as exc:
                    # EventBridge retries a refused target, then gives up on the event.
                    self.events.refused.append(f"{rule.name}: {exc}")
                    self._say(f"event {what}: {rule.name} refused: {exc}")

    def _may_invoke(self, rule: str, function: str) -> bool:
        """EventBridge invokes a function only where its resource policy lets the rule."""
        assert self.authorizer is not None
        if self.authorizer.rule_may_invoke(self.authorizer.rule_named(rule, function), function):
            return True
        self.events.refused.append(f"{rule}: no lambda:InvokeFunction permission on {function}")
        self._say(f"{rule} may not invoke {function}: no AWS::Lambda::Permission for it")
        return False

    # -- executions -----------------------------------------------------------------------
    def sfn_client(self) -> Any:
        return boto3.client("stepfunctions", region_name=self.world.region)

    def ec2_client(self) -> Any:
        return boto3.client("ec2", region_name=self.world.region)

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
        machines = self.stack.state_machines
        if "machine" in spec and spec["machine"] not in machines:
            raise ScenarioError(
                f"step {index}: the template has no state machine {spec['machine']}"
            )
        machine = machines[spec["machine"]] if "machine" in spec else next(iter(machines.values()))
        self._say(f"step {index}: start on demand {json.dumps(execution_input)}")
        self._start_execution(machine, execution_input, "on-demand", spec.get("name"))

    def _start_execution(
        self, machine_arn: str, execution_input: Any, started_by: str, name: str | None
    ) -> _Execution:
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
        # The execution's thread waits for its turn: it cannot have ended yet.
        execution = _Execution(
            name,
            arn,
            machine_arn,
            started_by,
            self.clock.now(),
            time.monotonic(),
            execution_input,
        )
        self.executions.append(execution)
        self._by_arn[arn] = execution
        return execution

    def _abort(self, index: int, spec: Mapping[str, Any]) -> None:
        wanted = spec["execution"]
        running = [e for e in self.executions if not e.ended]
        chosen = [e for e in running if e.name == wanted] or [
            e for e in running if e.name.startswith(wanted)
        ]
        if not chosen:
            raise ScenarioError(
                f"step {index}: no running execution is named or starts with {wanted!r}"
            )
        reason = {k: spec[k] for k in ("error", "cause") if k in spec}
        for execution in chosen:
            self._say(f"step {index}: abort {execution.name}")
            with self.faults.suspended():
                self.sfn_client().stop_execution(executionArn=execution.arn, **reason)

    def _on_execution_end(self, ended: Any) -> None:
        """Called in the execution's own thread: what AWS tells EventBridge, and the log."""
        execution = self._by_arn.get(ended.exec_arn)
        if execution is None:  # started by a handler, not by the simulator
            execution = _Execution(
                str(ended.name),
                str(ended.exec_arn),
                str(ended.state_machine_arn),
                "StartExecution",
                ended.start_date,
                time.monotonic(),
                ended.input_data,
            )
            self.executions.append(execution)
            self._by_arn[execution.arn] = execution
        execution.ended = True
        status = str(getattr(ended.exec_status, "value", ended.exec_status))
        error, cause = ended.error, ended.cause
        self._say(f"{execution.name}  {status}" + (f" {error}: {_clip(cause)}" if error else ""))
        now = self.clock.now()
        output = getattr(ended, "output", None)
        self.world.queue_event(
            now,
            base_event(
                self.world,
                "Step Functions Execution Status Change",
                now,
                [execution.arn],
                {
                    "executionArn": execution.arn,
                    "stateMachineArn": execution.machine_arn,
                    "name": execution.name,
                    "status": status,
                    "startDate": int(execution.started_at.timestamp() * 1000),
                    "stopDate": int(now.timestamp() * 1000),
                    "input": json.dumps(execution.input),
                    "output": json.dumps(output) if status == "SUCCEEDED" else None,
                    "inputDetails": {"included": True},
                    "outputDetails": {"included": True} if status == "SUCCEEDED" else None,
                    "error": error,
                    "cause": cause,
                    "redriveCount": 0,
                    "redriveStatus": "NOT_REDRIVABLE",
                },
                source="aws.states",
            ),
        )

    def _on_history_event(self, manager: object, event_type: str, details: dict[str, Any]) -> None:
        me = self.clock.current()
        offset = self.clock.elapsed()
        prefix = (
            f"+{int(offset) // 3600}:{int(offset) % 3600 // 60:02d}:"
            f"{offset % 60:04.1f}  {me.tag if me else '?'}  "
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

    def _execution_result(self, execution: _Execution) -> ExecutionResult:
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
        stopped = described.get("stopDate")
        return ExecutionResult(
            name=execution.name,
            status=str(described["status"]),
            state_transitions=transitions,
            error=described.get("error"),
            cause=described.get("cause"),
            started_by=execution.started_by,
            started_at=iso_ms(execution.started_at),
            virtual_seconds=((stopped or self.clock.now()) - execution.started_at).total_seconds(),
            output=json.loads(output) if output else None,
        )

    # -- the operator's view --------------------------------------------------------------
    def report(self) -> Report:
        from simulator.verdicts import peak_attached, read_alerts, read_ledger, read_verdicts

        for execution in self.executions:
            execution.result = self._execution_result(execution)
        with self.faults.suspended():
            snapshots, volumes_left = read_verdicts(self)
            ledger, locks_held, claims_running = read_ledger(self)
        executions = [e.result for e in self.executions if e.result is not None]
        calls = self.authorizer.calls if self.authorizer is not None else []
        alias_of = {i: alias for alias, i in self.aliases.instances.items()}
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
            alerts=read_alerts(self),
            peak_attached=peak_attached(self),
            lambda_errors=[asdict(e) for e in self.functions.async_errors],
            locks_held=locks_held,
            claims_running=claims_running,
            ledger=ledger,
            backups=list(self.estate.backup_summaries) if self.estate else [],
            calls_allowed=sum(c.allowed for c in calls),
            calls_refused=[str(c) for c in calls if not c.allowed],
            reboots=[
                f"{alias_of.get(i, i)}: {why}"
                for i, host in self.world.hosts.items()
                for why in host.reboots
            ],
            boot_hazards=[
                f"{alias_of.get(i, i)}: {hazard}"
                for i, host in self.world.hosts.items()
                for hazard in host.boot_hazards
            ],
        )
        now = self.clock.now()
        price = float(self.stack.parameters.get("HelperHourlyPrice", "0") or 0)
        report.helpers = [
            {
                "instance_id": h.instance_id,
                "zone": h.zone,
                "seconds": round(h.billed_seconds(now), 1),
                "cost_usd": round(h.billed_seconds(now) * price / 3600, 4),
                "running": h.terminated_at is None,
            }
            for h in self.fleet.launched.values()
        ]
        report.nights = asdict(self.nights) if self.nights is not None else None
        report.failures = check_expectations(report, self.scenario.expect)
        left = [h.instance_id for h in self.fleet.running()]
        if left:
            # Helpers are throwaway: a run that ends with one of ours still running leaks money.
            report.failures.append("helpers of ours left running: " + ", ".join(left))
        clones = [c.instance_id for c in self.fleet.boot_tests.values() if c.terminated_at is None]
        if clones:
            # The boot test's clone of a production server must never outlive its test.
            report.failures.append("boot test instances left: " + ", ".join(clones))
        if volumes_left:
            report.failures.append(
                "volumes left behind: " + ", ".join(v["volume_id"] for v in volumes_left)
            )
        stopped = [e.name for e in self.executions if e.stopped_for_time]
        if stopped:
            report.failures.append(
                "executions stopped by the real-time limit: " + ", ".join(stopped)
            )
        report.ok = not report.failures
        return report


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
