"""Faults a scenario injects: API errors, slow resources, failed resources, Windows errors."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse
from moto.ec2.exceptions import EC2ClientError

from simulator.patching import Patches

# Timing keys a fault may stretch for the next few resources (see Timing).
TIMING_KEYS = (
    "volume_available_seconds",
    "attach_seconds",
    "detach_seconds",
    "disk_arrival_seconds",
    "snapshot_seconds",
    "inspect_seconds",
    "revert_seconds",
    "check_seconds",
)
OUTCOMES = ("volume_error", "snapshot_error")
# What someone may do to the helper a disk tool action runs on (simulator/instance_loss.py).
HELPER_LOSSES = ("stop", "terminate")
WINDOWS_ACTIONS = ("Inspect", "Revert", "Check")
# Events the workflow's actions cause, that a fault may lose, delay or repeat.
EVENTS = (
    "EC2 Command Invocation Status-change Notification",
    "EBS Snapshot Notification",
    "Step Functions Execution Status Change",
)

# HTTP status AWS answers with, for the codes botocore treats by status as well as by code.
_STATUS = {
    "RequestLimitExceeded": 503,
    "Throttling": 400,
    "ThrottlingException": 400,
    "InternalError": 500,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
    "Unavailable": 503,
}


class InjectedError(ServiceException):
    """An injected API error, defined outside moto (moto names the service by the module)."""


@dataclass
class Fault:
    kind: str  # "api" | "timing" | "outcome" | "windows" | "scan" | "linger" | "event" | "lost"
    target: str  # "ec2:CreateVolume", a timing key, an outcome, a disk tool action, a detail-type
    times: int | None  # None: every time
    skip: int = 0
    error: str = ""
    message: str = ""
    seconds: float = 0.0
    scan_result: str = ""
    lost: bool = False
    duplicate: bool = False
    function: str = ""  # an API fault only hits calls this function's handler makes
    used: int = 0

    def take(self) -> bool:
        """Whether this call is hit; counts the call either way."""
        if self.skip > 0:
            self.skip -= 1
            return False
        if self.times is not None and self.used >= self.times:
            return False
        self.used += 1
        return True


@dataclass(frozen=True)
class ApiError:
    code: str
    message: str
    status: int


def parse_fault(spec: dict[str, Any]) -> Fault:
    times = spec.get("times", 1)
    common: dict[str, Any] = {"times": times, "skip": int(spec.get("skip", 0))}
    if "action" in spec:
        return Fault(
            "api",
            str(spec["action"]).lower(),
            error=str(spec["error"]),
            message=str(spec.get("message", "")),
            function=str(spec.get("function", "")),
            **common,
        )
    if "timing" in spec:
        return Fault("timing", str(spec["timing"]), seconds=float(spec["seconds"]), **common)
    if "outcome" in spec:
        return Fault(
            "outcome", str(spec["outcome"]), message=str(spec.get("message", "")), **common
        )
    if "event" in spec:
        return Fault(
            "event",
            str(spec["event"]),
            seconds=float(spec.get("delay_seconds", spec.get("duplicate_after_seconds", 0))),
            lost=bool(spec.get("lost", False)),
            duplicate="duplicate_after_seconds" in spec,
            **common,
        )
    if "stdout_after_report" in spec:
        return Fault(
            "trailer", str(spec["windows"]), message=str(spec["stdout_after_report"]), **common
        )
    if "revert_lingers_seconds" in spec:
        return Fault(
            "linger", str(spec["windows"]), seconds=float(spec["revert_lingers_seconds"]), **common
        )
    if "helper_lost" in spec:
        return Fault(
            "lost",
            str(spec["windows"]),
            error=str(spec["helper_lost"]),
            seconds=float(spec.get("after_seconds", 0)),
            **common,
        )
    if "scan_result" in spec:
        return Fault("scan", str(spec["windows"]), scan_result=str(spec["scan_result"]), **common)
    return Fault("windows", str(spec["windows"]), error=str(spec["error"]), **common)


class Faults:
    """The scenario's faults, consumed as the calls they aim at happen."""

    def __init__(
        self, faults: list[Fault], caller: Callable[[], str | None] = lambda: None
    ) -> None:
        self._faults = faults
        self._caller = caller  # the function whose handler makes the call, if any
        self._lock = threading.Lock()
        # Per thread: while the simulator's thread reads or sets up, executions run on.
        self._local = threading.local()
        self.hits: list[str] = []

    @property
    def is_suspended(self) -> bool:
        return bool(getattr(self._local, "suspended", 0))

    @contextmanager
    def suspended(self, suspend: bool = True) -> Iterator[None]:
        """The simulator's own calls (setup, the nightly backup) are never faulted.

        `suspended(False)` lifts it for work done on behalf of the workflow, e.g. a command
        the workflow sent that starts while the simulator happens to be looking.
        """
        before = getattr(self._local, "suspended", 0)
        self._local.suspended = before + 1 if suspend else 0
        try:
            yield
        finally:
            self._local.suspended = before

    @contextmanager
    def acting_as(self, document: str) -> Iterator[None]:
        """Calls a document makes on an instance (the nightly backup: "BackupDocument"):
        only the faults aimed at it (`"function": "BackupDocument"`) hit them, even while
        the simulator's own calls are suspended."""
        before = getattr(self._local, "acting", "")
        self._local.acting = document
        try:
            yield
        finally:
            self._local.acting = before

    def _take(self, kind: str, target: str) -> Fault | None:
        with self._lock:
            acting = getattr(self._local, "acting", "")
            if self.is_suspended and not acting:
                return None
            caller = acting or self._caller()
            for fault in self._faults:
                if (acting or fault.function) and fault.function != caller:
                    continue
                if fault.kind == kind and fault.target == target and fault.take():
                    self.hits.append(f"{kind} {target}")
                    return fault
        return None

    def api_error(self, service: str, action: str) -> ApiError | None:
        fault = self._take("api", f"{service}:{action}".lower())
        if fault is None:
            return None
        message = fault.message or f"Simulated {fault.error} for {action}."
        return ApiError(fault.error, message, _STATUS.get(fault.error, 400))

    def seconds(self, key: str, default: float) -> float:
        fault = self._take("timing", key)
        return fault.seconds if fault else default

    def outcome(self, name: str) -> str | None:
        """The failure message when the next resource of this kind must fail."""
        fault = self._take("outcome", name)
        if fault is None:
            return None
        return fault.message or "Simulated failure."

    def event_delivery(self, detail_type: str) -> list[float]:
        """When EventBridge delivers the next such event, in seconds after it is due: one
        moment, none (lost), a later one (delayed) or two (duplicated: at least once)."""
        fault = self._take("event", detail_type)
        if fault is None:
            return [0.0]
        if fault.lost:
            return []
        if fault.duplicate:
            return [0.0, fault.seconds]
        return [fault.seconds]

    def windows_error(self, action: str) -> str:
        fault = self._take("windows", action)
        return fault.error if fault else ""

    def trailing_output(self, action: str) -> str:
        """A line the next such command prints after its report, if a fault says."""
        fault = self._take("trailer", action)
        return fault.message if fault else ""

    def revert_lingers(self, action: str) -> float:
        """How long VSS goes on reverting after DiskShadow returns, if a fault says."""
        fault = self._take("linger", action)
        return fault.seconds if fault else 0.0

    def helper_lost(self, action: str) -> tuple[str, float]:
        """Whether someone stops or terminates the helper the next such action begins on, and
        how many seconds after it began: ("stop" | "terminate" | "", seconds)."""
        fault = self._take("lost", action)
        return (fault.error, fault.seconds) if fault else ("", 0.0)

    def scan_result(self, action: str) -> str:
        """What the next Check's scan must find on its first volume, if a fault says."""
        fault = self._take("scan", action)
        return fault.scan_result if fault else ""


def install(patches: Patches, faults: Faults) -> None:
    """API faults come out of moto's request handling, as AWS's errors would."""

    def faulty(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def call_action(response: Any) -> Any:
            error = faults.api_error(response.boto3_service_name, response._get_action())
            if error is None:
                return original(response)
            exception: ServiceException = (
                EC2ClientError(error.code, error.message)
                if response.boto3_service_name == "ec2"
                else InjectedError(error.code, error.message)
            )
            _, headers, body = response.serialized(ActionResult(exception))
            return error.status, headers, body

        return call_action

    patches.wrap(BaseResponse, "call_action", faulty)
