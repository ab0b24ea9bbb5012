"""Run Command as a Windows helper's SSM agent runs it, over moto's SSM backend."""

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ssm.models import Command, SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse

from simulator import powershell
from simulator.patching import Patches
from simulator.windows import ToolRun
from simulator.world import World, arn, base_event, iso_ms, seconds

# GetCommandInvocation's statuses that end an invocation: each sends EventBridge one event.
TERMINAL = frozenset({"Success", "Failed", "TimedOut", "Cancelled"})
INVOCATION_EVENT = "EC2 Command Invocation Status-change Notification"
# GetCommandInvocation gives "the first 24,000 characters written by the plugin to stdout"
# and "the first 8,000 characters written by the plugin to stderr" (SSM API Reference,
# StandardOutputContent / StandardErrorContent; amazon-ssm-agent agent/appconfig/constants.go:
# MaxStdoutLength = 24000, MaxStderrLength = 8000). A report printed last is what is cut.
STDOUT_LIMIT = 24_000
STDERR_LIMIT = 8_000
# The agent runs up to Mds.CommandWorkersLimit commands at once on an instance, each in a
# worker of its own; the others wait, Pending, for a worker to free up (amazon-ssm-agent:
# agent/appconfig/constants.go DefaultCommandWorkersLimit = 5, the size of the command
# worker pool agent/runcommand/service.go builds; its README: "Allow this number of
# commands to run in parallel", default 5). Not modelled: the agent's buffer of waiting
# commands (Mds.CommandWorkerBufferLimit, default 5), past which commands stay with the
# service: here any number wait, in the order sent.
COMMAND_WORKERS_LIMIT = 5
AGENT_VERSION = "3.3.1957.0"
# The disk tool holds the named mutex Global\vss-restore-disktool around every action
# (documents/disk-tool.ps1): commands run side by side, their actions one at a time, in the
# order the scripts asked (Windows does not promise FIFO; simulated so). A script that waits
# this long gives up. A mutex is freed when its holder ends, however it ends (an abandoned
# mutex: the next WaitOne takes it).
MUTEX_WAIT_SECONDS = 30 * 60
# CancelCommand is best effort: the agent stops the script's process when it next hears
# from SSM (Cancelling until then, Cancelled after; SSM API Reference, CancelCommand and
# Command.Status). A few seconds: no published figure, modelled.
CANCEL_SECONDS = 3.0
# A Windows script that exits 3010 makes the agent reboot the instance and run the script again
# (AWS Systems Manager User Guide, "Handling reboots when running commands"; amazon-ssm-agent
# agent/contracts: exit code 3010 is a reboot request on Windows). The disk tool never exits so
# (documents/disk-tool.ps1 ends with exit 0 or exit 1); were it to, the simulated helper reboots.
REBOOT_EXIT_CODE = 3010
REBOOT_SECONDS = 90.0
# The disk tool's actions that run on after the script starts, and their timing keys.
_LONG_PARTS = {"Revert": "revert_seconds", "Check": "check_seconds"}
# AWS's own Run Command document for PowerShell, as every account has it (Systems Manager,
# Documents, Owned by Amazon: AWS-RunPowerShellScript, schema 1.2, its plugin
# aws:runPowerShellScript): the commands' lines run as one script.
RUN_POWERSHELL = "AWS-RunPowerShellScript"
RUN_POWERSHELL_CONTENT: dict[str, Any] = {
    "schemaVersion": "1.2",
    "description": "Run a PowerShell script or specify the paths to scripts to run.",
    "parameters": {
        "commands": {
            "type": "StringList",
            "description": "(Required) Specify the commands to run or the paths to an "
            "existing script on the instance.",
        },
        "workingDirectory": {"type": "String", "default": ""},
        "executionTimeout": {
            "type": "String",
            "default": "3600",
            "allowedPattern": "([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})"
            "|(172[0-7][0-9]{2})|(172800)",
        },
    },
    "runtimeConfig": {
        "aws:runPowerShellScript": {
            "properties": [
                {
                    "id": "0.aws:runPowerShellScript",
                    "runCommand": "{{ commands }}",
                    "workingDirectory": "{{ workingDirectory }}",
                    "timeoutSeconds": "{{ executionTimeout }}",
                }
            ]
        }
    },
}


class SsmError(ServiceException):
    """An SSM API error, serialized by moto like its own."""


@dataclass(frozen=True)
class CommandDocument:
    """A Command document's parameters and step names, as the agent reads them."""

    name: str
    parameters: Mapping[str, Mapping[str, Any]]
    steps: tuple[str, ...]
    step_timeout: float
    is_disk_tool: bool

    @classmethod
    def from_content(
        cls, name: str, content: Mapping[str, Any], is_disk_tool: bool
    ) -> "CommandDocument":
        steps = content.get("mainSteps") or []
        timeout = (
            float((steps[0].get("inputs") or {}).get("timeoutSeconds", 3600)) if steps else 3600
        )
        return cls(
            name=name,
            parameters=content.get("parameters") or {},
            steps=tuple(str(step.get("name")) for step in steps),
            step_timeout=timeout,
            is_disk_tool=is_disk_tool,
        )


@dataclass
class Invocation:
    """One command on one instance, on the virtual clock."""

    world: World
    command_id: str
    instance_id: str
    document: CommandDocument
    comment: str
    parameters: dict[str, str]
    requested_at: datetime
    delivery_deadline: datetime
    # Every invocation sent to this instance, in the order sent (this one included).
    on_instance: list["Invocation"] = field(repr=False, compare=False)
    rejection: str = ""
    run: ToolRun | None = None
    started_at: datetime | None = None
    # When the script took the helper's mutex and began its action; while it waits for it,
    # waiting_until is when it looks again (the holder's end, or its own give-up time).
    acquired_at: datetime | None = None
    waiting_until: datetime | None = None
    done_at: datetime | None = None
    finished: bool = False
    timed_out_delivery: bool = False
    stdout: str = ""
    stderr: str = ""
    exit_code: int = -1
    # Sent by the workflow (faults apply when it starts), not by the simulator itself.
    faultable: bool = True
    # CancelCommand: when it was asked, and whether the agent stopped the script's process
    # (nothing of its end ran); a revert DiskShadow runs cannot be stopped and goes on.
    cancelled_at: datetime | None = None
    killed: bool = False
    # Its instance was stopped or terminated (simulator/instance_loss.py): the agent is gone,
    # nothing of the command ends; at its expiry it is TimedOut, DeliveryTimedOut.
    lost_at: datetime | None = None

    @property
    def expires_at(self) -> datetime:
        """The command's expiry: its delivery timeout plus its execution timeout (SSM API
        Reference, Command ExpiresAfter: "If a command expires, it changes status to
        DeliveryTimedOut for all invocations that have the status InProgress, Pending, or
        Delayed")."""
        return self.delivery_deadline + seconds(self.document.step_timeout)

    def lose(self, at: datetime) -> None:
        """Its instance stops or terminates now: a command not ended never ends on it."""
        ended = self.ended_at()
        if self.lost_at is not None or self.finished or (ended is not None and ended <= at):
            return
        self.lost_at = at
        self.waiting_until = None
        self.done_at = None

    @property
    def visible_at(self) -> datetime:
        return self.requested_at + seconds(self.world.timing.invocation_visible_seconds)

    def _start_due(self) -> datetime | None:
        if self.started_at is not None or self.timed_out_delivery or self.cancelled_at:
            return None
        if not self._agent_online():
            return self.delivery_deadline
        earliest = self.requested_at + seconds(self.world.timing.command_delivery_seconds)
        for other in self.on_instance:
            if other is self:
                break
            if other.started_at is None and not other.timed_out_delivery:
                return None  # the agent starts its commands in the order they came
        busy_until = sorted(
            freed
            for other in self.on_instance
            if other is not self and (freed := other.worker_freed_at()) is not None
            if freed > earliest
        )
        # A script waiting for the helper's mutex holds its worker until an unknown end.
        unknown = sum(
            1
            for other in self.on_instance
            if other is not self and other.started_at is not None and other.done_at is None
        )
        if unknown + len(busy_until) < COMMAND_WORKERS_LIMIT:
            return earliest
        # Every worker busy: this one starts when enough of them are free that one is.
        needed = unknown + len(busy_until) - COMMAND_WORKERS_LIMIT + 1
        return busy_until[needed - 1] if needed <= len(busy_until) else None

    def worker_freed_at(self) -> datetime | None:
        """When the agent's worker running this command is free again, once that is known:
        the script's end, or the document's timeout, when the agent stops it."""
        if self.started_at is None or self.done_at is None:
            return None
        return min(self.done_at, self.started_at + seconds(self.document.step_timeout))

    def next_due(self) -> datetime | None:
        if self.finished or self.timed_out_delivery or self.lost_at is not None:
            return None
        if self.started_at is None:
            return self._start_due()
        if self.waiting_until is not None:
            return self.waiting_until
        # A command already running reports nothing while its agent is offline.
        return self.done_at if self._agent_online() else None

    def _agent_online(self) -> bool:
        managed = self.world.managed.get(self.instance_id)
        return managed is not None and managed.ping_status == "Online"

    def happen(self, at: datetime) -> None:
        if self.started_at is None:
            managed = self.world.managed.get(self.instance_id)
            if (
                managed is None or managed.ping_status != "Online"
            ) and at >= self.delivery_deadline:
                self.timed_out_delivery = True
                return
            self._start(at)
        elif self.waiting_until is not None:
            with self.world.faults.suspended(not self.faultable):
                self._act_when_free(at)
        else:
            self._finish()

    def _start(self, at: datetime) -> None:
        # Whoever happens to settle the timeline, the command is the sender's.
        with self.world.faults.suspended(not self.faultable):
            self._run_start(at)

    def _run_start(self, at: datetime) -> None:
        self.started_at = at
        timing = self.world.timing
        if self.rejection:
            self.done_at = at + seconds(timing.command_failure_seconds)
            return
        host = self.world.host(self.instance_id)
        if not self.document.is_disk_tool or host is None:
            self.done_at = at + seconds(timing.command_failure_seconds)
            return
        self._act_when_free(at)

    def _mutex_held_until(self, at: datetime) -> datetime | None:
        """When the disk tool that holds the helper's mutex lets it go, if one holds it."""
        frees = [
            freed
            for other in self.on_instance
            if other is not self and other.acquired_at is not None
            if (freed := other.worker_freed_at()) is not None and freed > at
        ]
        return max(frees) if frees else None

    def _act_when_free(self, at: datetime) -> None:
        timing = self.world.timing
        assert self.started_at is not None
        host = self.world.host(self.instance_id)
        assert host is not None
        held_until = self._mutex_held_until(at)
        give_up = self.started_at + seconds(MUTEX_WAIT_SECONDS)
        if held_until is not None and at < give_up:
            self.waiting_until = min(held_until, give_up)
            return
        self.waiting_until = None
        self.run = ToolRun(host, self.parameters)
        if held_until is not None:  # gave up: it never held the mutex
            self.run.start(
                "another disk tool command has held this helper for 30 minutes; nothing done"
            )
            self.done_at = at + seconds(timing.command_failure_seconds)
            return
        self.acquired_at = at
        action = self.run.action
        someone, after = self.world.faults.helper_lost(action)
        if someone and self.world.lose_instance_at is not None:
            self.world.lose_instance_at(self.instance_id, someone, at + seconds(after))
        self.run.trailing_output = self.world.faults.trailing_output(action)
        long_part = self.run.start(self.world.faults.windows_error(action))
        if long_part:
            # Only a Check that got as far as scanning meets the scan a fault forces, and only
            # a Revert that got as far as DiskShadow an asynchronous revert.
            self.run.forced_scan_result = self.world.faults.scan_result(action)
            self.run.revert_lingers = self.world.faults.revert_lingers(action)
            key = _LONG_PARTS[action]
            duration = self.world.faults.seconds(key, getattr(timing, key))
            duration += self.run.revert_wait_seconds()
        elif action == "Inspect" and self.run.finish()["ok"]:
            duration = self.world.faults.seconds("inspect_seconds", timing.inspect_seconds)
        else:
            duration = timing.command_failure_seconds
        self.done_at = at + seconds(duration)

    def cancel(self, at: datetime) -> None:
        """CancelCommand for this instance: a command not started never runs; a running
        script's process is stopped (no finally of it runs), except a revert, which VSS
        cannot cancel (FIELD-NOTES §4): it goes on to its end."""
        if self.finished or self.timed_out_delivery or self.cancelled_at is not None:
            return
        self.cancelled_at = at
        if self.started_at is None or self.lost_at is not None:
            return  # no agent hears it: the command expires all the same
        reverting = self.run is not None and self.run.action == "Revert"
        stopped = at + seconds(CANCEL_SECONDS)
        if not reverting:
            self.killed = True
            self.waiting_until = None
            self.done_at = min(self.done_at, stopped) if self.done_at else stopped

    def _finish(self) -> None:
        self.finished = True
        if self.killed:
            self.exit_code = -1
            self.stderr = "the command was cancelled: its process was stopped"
        elif self.rejection:
            self.stderr, self.exit_code = self.rejection, 1
        elif self.run is None and self.document.name == RUN_POWERSHELL:
            self.stdout, self.stderr, self.exit_code = powershell.run(
                self.world.host(self.instance_id), self.parameters.get("commands", "")
            )
        elif self.run is None:
            self.exit_code = 0
        else:
            report = self.run.finish()
            self.stdout = self.run.stdout
            self.exit_code = self.run.exit_code
            if not report["ok"]:
                self.stderr = f"{report['error']}\nfailed to run commands: exit status 1"
            host = self.world.host(self.instance_id)
            if self.exit_code == REBOOT_EXIT_CODE and host is not None and self.done_at:
                # The agent reboots the helper, then runs the script again from the start.
                host.reboot(f"command {self.command_id} exited {REBOOT_EXIT_CODE}")
                self.finished, self.acquired_at, self.run = False, None, None
                self.waiting_until = self.done_at + seconds(REBOOT_SECONDS)
                self.done_at = None

    def _timed_out_execution(self, now: datetime) -> bool:
        if self.started_at is None:
            return False
        deadline = self.started_at + seconds(self.document.step_timeout)
        return now >= deadline and (
            not self.finished or self.done_at is None or self.done_at > deadline
        )

    def ended_at(self) -> datetime | None:
        """When the invocation reached its final status, once that is known."""
        if self.lost_at is not None:
            return self.expires_at
        if self.timed_out_delivery:
            return self.delivery_deadline
        if self.cancelled_at is not None and self.started_at is None:
            return self.cancelled_at
        if self.started_at is None or self.done_at is None:
            return None
        deadline = self.started_at + seconds(self.document.step_timeout)
        if self.done_at > deadline:
            return deadline  # the agent stops the script and reports TimedOut
        return self.done_at if self.finished else None

    def status(self, now: datetime) -> tuple[str, str]:
        """(Status, StatusDetails) as GetCommandInvocation tells them."""
        if self.lost_at is not None:
            # Never Success nor Failed: the agent that would report its end is gone.
            if now >= self.expires_at:
                return "TimedOut", "DeliveryTimedOut"
            if self.cancelled_at is not None:
                return "Cancelling", "Cancelling"
            if self.started_at is None:
                return "Delayed", "Delayed"
            return "InProgress", "InProgress"
        if self.timed_out_delivery:
            return "TimedOut", "DeliveryTimedOut"
        if self.cancelled_at is not None:
            done = self.started_at is None or (self.done_at is not None and now >= self.done_at)
            return ("Cancelled", "Cancelled") if done else ("Cancelling", "Cancelling")
        if self.started_at is None:
            return "Pending", "Pending"
        if self._timed_out_execution(now):
            return "TimedOut", "ExecutionTimedOut"
        if not self.finished:
            return "InProgress", "InProgress"
        return ("Success", "Success") if self.exit_code == 0 else ("Failed", "Failed")

    def response(self, now: datetime) -> dict[str, Any]:
        status, details = self.status(now)
        ended = status in {"Success", "Failed", "TimedOut"} and status != "Pending"
        end = self.done_at if ended and self.done_at is not None else None
        elapsed = ((end or now) - self.started_at).total_seconds() if self.started_at else 0.0
        return {
            "CommandId": self.command_id,
            "InstanceId": self.instance_id,
            "Comment": self.comment,
            "DocumentName": self.document.name,
            "DocumentVersion": "1",
            "PluginName": self.document.steps[0] if self.document.steps else "",
            "ResponseCode": self.exit_code if ended and status != "TimedOut" else -1,
            "ExecutionStartDateTime": _iso(self.started_at) if self.started_at else "",
            "ExecutionElapsedTime": f"PT{elapsed:.3f}S",
            "ExecutionEndDateTime": _iso(end) if end else "",
            "Status": status,
            "StatusDetails": details,
            "StandardOutputContent": self.stdout[:STDOUT_LIMIT] if ended else "",
            "StandardOutputUrl": "",
            "StandardErrorContent": self.stderr[:STDERR_LIMIT] if ended else "",
            "StandardErrorUrl": "",
            "CloudWatchOutputConfig": {
                "CloudWatchLogGroupName": "",
                "CloudWatchOutputEnabled": False,
            },
        }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class InvocationEnded:
    """On the world's timeline: the event SSM sends when an invocation ends (FIELD-NOTES §2).

    Its detail holds what AWS's documentation shows for this detail-type: command-id,
    document-name, instance-id, requested-date-time, status. No output, no Comment: the
    receiver asks GetCommandInvocation.
    """

    invocation: Invocation
    sent: bool = False

    def next_due(self) -> datetime | None:
        return None if self.sent else self.invocation.ended_at()

    def happen(self, at: datetime) -> None:
        self.sent = True
        invocation = self.invocation
        world = invocation.world
        status, _ = invocation.status(at)
        if status not in TERMINAL:
            return
        world.queue_event(
            at + seconds(world.timing.event_delivery_seconds),
            base_event(
                world,
                INVOCATION_EVENT,
                at,
                [arn(world, "instance", invocation.instance_id)],
                {
                    "command-id": invocation.command_id,
                    "document-name": invocation.document.name,
                    "instance-id": invocation.instance_id,
                    "requested-date-time": iso_ms(invocation.requested_at),
                    "status": status,
                },
                source="aws.ssm",
            ),
            faultable=invocation.faultable,
        )


@dataclass
class Agents:
    """Every invocation sent, and the documents the agents know how to run."""

    world: World
    documents: dict[str, CommandDocument] = field(default_factory=dict)
    invocations: dict[tuple[str, str], Invocation] = field(default_factory=dict)
    log: list[Invocation] = field(default_factory=list)
    by_instance: dict[str, list[Invocation]] = field(default_factory=dict)

    def disk_tool_commands(self) -> dict[str, int]:
        """How many disk tool commands were sent, by Action, in the order first sent."""
        counts: dict[str, int] = {}
        for invocation in self.log:
            if invocation.document.is_disk_tool:
                action = invocation.parameters.get("Action", "")
                counts[action] = counts.get(action, 0) + 1
        return counts

    def peak_running(self, instance_id: str) -> int:
        """The most commands the instance's agent ran at once (the Run Command history's
        start and end times say as much)."""
        changes = sorted(
            (moment, step)
            for invocation in self.log
            if invocation.instance_id == instance_id and invocation.started_at is not None
            for moment, step in (
                (invocation.started_at, 1),
                (invocation.worker_freed_at() or invocation.started_at, -1),
            )
        )
        running = peak = 0
        for _, step in changes:  # at one moment, an end (-1) sorts before a start
            running += step
            peak = max(peak, running)
        return peak

    def send(
        self,
        command_id: str,
        document_name: str,
        instance_ids: list[str],
        parameters: Mapping[str, list[str]],
        comment: str,
        timeout_seconds: int,
    ) -> None:
        document = self.documents.get(document_name) or CommandDocument(
            document_name, {}, ("aws:runPowerShellScript",), 3600, False
        )
        flat, rejection = _agent_parameters(document, parameters)
        if document.name == RUN_POWERSHELL and not rejection:
            # Its plugin's timeoutSeconds is the executionTimeout parameter.
            document = replace(document, step_timeout=float(flat["executionTimeout"]))
        now = self.world.clock.now()
        for instance_id in instance_ids:
            on_instance = self.by_instance.setdefault(instance_id, [])
            invocation = Invocation(
                world=self.world,
                command_id=command_id,
                instance_id=instance_id,
                document=document,
                comment=comment,
                parameters=flat,
                requested_at=now,
                delivery_deadline=now + seconds(timeout_seconds),
                on_instance=on_instance,
                rejection=rejection,
                faultable=not self.world.faults.is_suspended,
            )
            self.invocations[(command_id, instance_id)] = invocation
            on_instance.append(invocation)
            self.log.append(invocation)
            self.world.happenings.append(invocation)
            self.world.happenings.append(InvocationEnded(invocation))

    def get(self, command_id: str, instance_id: str, plugin_name: str | None) -> dict[str, Any]:
        self.world.settle()
        invocation = self.invocations.get((command_id, instance_id))
        now = self.world.clock.now()
        if invocation is None or now < invocation.visible_at:
            raise SsmError("InvocationDoesNotExist", "")
        if plugin_name and plugin_name not in invocation.document.steps:
            raise SsmError("InvalidPluginName", "The plugin name is not valid.")
        return invocation.response(now)

    def cancel(self, command_id: str, instance_ids: list[str]) -> None:
        self.world.settle()
        now = self.world.clock.now()
        found = [
            invocation
            for (command, instance), invocation in self.invocations.items()
            if command == command_id and (not instance_ids or instance in instance_ids)
        ]
        if not found:
            raise SsmError("InvalidCommandId", f"Invalid command ID: {command_id}")
        for invocation in found:
            invocation.cancel(now)

    def command_status(self, command_id: str) -> str:
        self.world.settle()
        now = self.world.clock.now()
        statuses = [i.status(now)[0] for (c, _), i in self.invocations.items() if c == command_id]
        for status in (
            "InProgress",
            "Cancelling",
            "Delayed",
            "Pending",
            "TimedOut",
            "Failed",
            "Cancelled",
        ):
            if status in statuses:
                return status
        return "Success"


def _agent_parameters(
    document: CommandDocument, given: Mapping[str, list[str]]
) -> tuple[dict[str, str], str]:
    """The values the script sees, and the agent's refusal if one breaks its allowedPattern."""
    values: dict[str, str] = {}
    for name, definition in document.parameters.items():
        given_value = given.get(name)
        value = given_value[0] if given_value else str(definition.get("default", ""))
        if given_value and definition.get("type") == "StringList":
            value = "\n".join(given_value)  # a script's lines, one after the other
        values[name] = value
        pattern = definition.get("allowedPattern")
        if pattern and not re.search(pattern, value):
            return values, (
                f'Parameter "{name}" has value "{value}" not matching '
                f'allowedPattern "{pattern}"; the document was not run.'
            )
    return values, ""


def _check_send(
    document: CommandDocument | None,
    world: World,
    instance_ids: list[str],
    parameters: Mapping[str, list[str]],
) -> None:
    """What the SSM service itself refuses at SendCommand."""
    # SendCommand: "Invalid states are: Shutting-down and Terminated" (SSM API Reference).
    unknown = [
        i
        for i in instance_ids
        if i not in world.managed or world.lost.get(i) in {"shutting-down", "terminated"}
    ]
    if unknown or not instance_ids:
        raise SsmError("InvalidInstanceId", f"Instances {unknown} not in a valid state for account")
    if document is None:
        return
    extra = sorted(set(parameters) - set(document.parameters))
    missing = sorted(
        name
        for name, definition in document.parameters.items()
        if "default" not in definition and name not in parameters
    )
    not_single = sorted(
        name
        for name, values in parameters.items()
        if document.parameters.get(name, {}).get("type") == "String" and len(values) != 1
    )
    if extra or missing or not_single:
        raise SsmError(
            "InvalidParameters",
            "; ".join(
                part
                for part in (
                    f"unknown parameters {extra}" if extra else "",
                    f"missing required parameters {missing}" if missing else "",
                    f"parameters {not_single} take exactly one value" if not_single else "",
                )
                if part
            ),
        )


def install(patches: Patches, world: World, agents: Agents) -> None:
    _aws_documents(world, agents)
    patches.wrap(
        SimpleSystemManagerBackend, "send_command", functools.partial(_send_command, world, agents)
    )
    patches.replace(
        SimpleSystemManagerBackend,
        "get_command_invocation",
        lambda backend, command_id, instance_id, plugin_name: agents.get(
            command_id, instance_id, plugin_name
        ),
    )
    # moto's Command says Success at once; the agents' invocations decide (writes drop).
    patches.replace(
        Command,
        "status",
        property(lambda command: agents.command_status(command.command_id), lambda c, v: None),
    )
    patches.replace(
        SimpleSystemManagerResponse,
        "describe_instance_information",
        lambda response: ActionResult(_describe_instance_information(world, response)),
    )
    # moto has no CancelCommand (FIELD-NOTES §8).
    patches.replace(
        SimpleSystemManagerResponse,
        "cancel_command",
        lambda response: _cancel_command(agents, response),
    )
    patches.replace(
        SimpleSystemManagerResponse,
        "list_command_invocations",
        lambda response: ActionResult(_list_command_invocations(world, agents, response)),
    )


def _aws_documents(world: World, agents: Agents) -> None:
    """AWS's own documents the project sends (names starting AWS- cannot be created by an
    account: written into moto as AWS has them)."""
    from moto.ssm.models import Document, Documents, ssm_backends

    backend = ssm_backends[world.account_id][world.region]
    document: Any = Document  # moto's class is abstract to mypy (CloudFormationModel)
    made = document(
        account_id=world.account_id,
        name=RUN_POWERSHELL,
        version_name=None,
        content=json.dumps(RUN_POWERSHELL_CONTENT),
        document_type="Command",
        document_format="JSON",
        requires=None,
        attachments=None,
        target_type=None,
    )
    backend._documents[RUN_POWERSHELL] = Documents(made)
    agents.documents[RUN_POWERSHELL] = CommandDocument(
        name=RUN_POWERSHELL,
        parameters=RUN_POWERSHELL_CONTENT["parameters"],
        steps=("aws:runPowerShellScript",),
        step_timeout=3600,
        is_disk_tool=False,
    )


def _cancel_command(agents: Agents, response: Any) -> ActionResult:
    command_id = response._get_param("CommandId")
    agents.cancel(command_id, list(response._get_param("InstanceIds") or []))
    return ActionResult({})


def _send_command(world: World, agents: Agents, original: Callable[..., Any]) -> Callable[..., Any]:
    def send_command(backend: Any, **kwargs: Any) -> Any:
        world.settle()
        name = kwargs.get("document_name") or ""
        backend._get_documents(name)  # InvalidDocument, as SSM says it
        instance_ids = list(kwargs.get("instance_ids") or [])
        parameters = kwargs.get("parameters") or {}
        _check_send(agents.documents.get(name), world, instance_ids, parameters)
        command = original(backend, **kwargs)
        agents.send(
            command.command_id,
            name,
            instance_ids,
            parameters,
            kwargs.get("comment") or "",
            int(kwargs.get("timeout_seconds") or 3600),
        )
        return command

    return send_command


_FILTER_FIELDS = {
    "InstanceIds": "InstanceId",
    "PingStatus": "PingStatus",
    "PlatformTypes": "PlatformType",
    "ResourceType": "ResourceType",
}


def _describe_instance_information(world: World, response: Any) -> dict[str, Any]:
    filters: dict[str, list[str]] = {}
    for item in response._get_param("Filters") or []:
        filters[item["Key"]] = item["Values"]
    for item in response._get_param("InstanceInformationFilterList") or []:
        key = {"InstanceIds": "InstanceIds", "PlatformTypes": "PlatformTypes"}.get(
            item["key"], item["key"]
        )
        filters[key] = item["valueSet"]
    now = world.clock.now()
    found = []
    for managed in world.managed.values():
        info = {
            "InstanceId": managed.instance_id,
            "PingStatus": managed.ping_status,
            "LastPingDateTime": now,
            "AgentVersion": AGENT_VERSION,
            "IsLatestVersion": False,
            "PlatformType": managed.platform_type,
            "PlatformName": managed.platform_name,
            "PlatformVersion": managed.platform_version,
            "ResourceType": "EC2Instance",
            "IPAddress": managed.ip_address,
            "ComputerName": managed.computer_name,
            "AssociationStatus": "Success",
        }
        if all(str(info.get(_FILTER_FIELDS.get(k, k))) in v for k, v in filters.items()):
            found.append(info)
    return {"InstanceInformationList": found}


def _list_command_invocations(world: World, agents: Agents, response: Any) -> dict[str, Any]:
    world.settle()
    command_id = response._get_param("CommandId")
    instance_id = response._get_param("InstanceId")
    details = bool(response._get_param("Details"))
    now = world.clock.now()
    listed = []
    for invocation in agents.log:
        if command_id and invocation.command_id != command_id:
            continue
        if instance_id and invocation.instance_id != instance_id:
            continue
        status, status_details = invocation.status(now)
        entry: dict[str, Any] = {
            "CommandId": invocation.command_id,
            "InstanceId": invocation.instance_id,
            "Comment": invocation.comment,
            "DocumentName": invocation.document.name,
            "DocumentVersion": "1",
            "RequestedDateTime": invocation.requested_at,
            "Status": status,
            "StatusDetails": status_details,
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
        }
        if details:
            full = invocation.response(now)
            entry["CommandPlugins"] = [
                {
                    "Name": full["PluginName"],
                    "Status": status,
                    "StatusDetails": status_details,
                    "ResponseCode": full["ResponseCode"],
                    "Output": (full["StandardOutputContent"] + full["StandardErrorContent"])[:2500],
                }
            ]
        listed.append(entry)
    return {"CommandInvocations": listed}
