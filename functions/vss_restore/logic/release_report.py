"""An execution that ended without its cleanup: the event read, the reason given, the alert."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vss_restore import tags
from vss_restore.errors import InvalidRequest, RestoreFailed
from vss_restore.logic.alert import Alert, console_link

# The statuses of an execution that may have ended before its own cleanup ran, and the
# error name its snapshots are marked failed with.
ENDED_BADLY = {
    "FAILED": "ExecutionFailed",
    "TIMED_OUT": "ExecutionTimedOut",
    "ABORTED": "ExecutionAborted",
}
# The error the workflow fails with once every restore has its verdict: each failed one
# was alerted by its own cleanup already.
RESTORES_FAILED = RestoreFailed.__name__
MAX_INPUT_IN_ALERT = 1000  # an event is up to 256 KB; its start tells what it was


@dataclass(frozen=True)
class StatusChange:
    """The parts of a "Step Functions Execution Status Change" event that matter here."""

    execution: str
    status: str
    ended_at: datetime
    error: str = ""  # the execution's error and cause, when it FAILED ("" when null)
    cause: str = ""
    input: str = ""  # its input, as JSON text ("" when not included)

    @property
    def name(self) -> str:
        return self.execution.rsplit(":", 1)[-1]


def parse_status_change(event: dict[str, Any]) -> StatusChange:
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidRequest("the event has no detail")
    execution = detail.get("executionArn")
    if not isinstance(execution, str) or ":execution:" not in execution:
        raise InvalidRequest(f"detail.executionArn is {execution!r}, not an execution ARN")
    status = detail.get("status")
    if status not in ENDED_BADLY:
        raise InvalidRequest(f"detail.status is {status!r}, not one of {sorted(ENDED_BADLY)}")
    try:
        ended_at = datetime.fromisoformat(str(event.get("time")))
    except ValueError:
        raise InvalidRequest(f"the event time {event.get('time')!r} is not a date") from None
    if ended_at.tzinfo is None:
        raise InvalidRequest(f"the event time {event.get('time')!r} has no time zone")
    return StatusChange(
        execution,
        str(status),
        ended_at,
        error=_text(detail.get("error")),
        cause=_text(detail.get("cause")),
        input=_text(detail.get("input")),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def failed_before_any_restore(change: StatusChange, *, claims: list[dict[str, str]]) -> bool:
    """The execution FAILED without claiming a snapshot, and not for a failed restore: its
    request was refused (InvalidRequest) or reading it failed, and nothing alerted yet."""
    return change.status == "FAILED" and not claims and change.error != RESTORES_FAILED


def release_reason(status: str) -> str:
    """The verdict's reason on a snapshot whose restore the execution left unfinished."""
    return f"{ENDED_BADLY[status]}: the execution ended {status} before its cleanup"


def release_alert(
    change: StatusChange,
    *,
    released: list[dict[str, str]],
    removed: list[str],
    left: list[str],
) -> Alert:
    """What was released and what is left, for an operator who was not watching."""
    lines = [
        f"The execution {change.name} ended {change.status} before its cleanup; "
        "vss-restore released what it still held.",
        "",
    ]
    if released:
        lines.append("Restores released (snapshot: verdict; the helper's turn given back):")
        lines.extend(
            f"  {r['snapshot_id']}: {r['status']} ({r['reason']})"
            + (f"; turn on {r['helper']} given back" if r.get("helper") else "")
            for r in released
        )
    if removed:
        lines.append("Temporary volumes removed: " + ", ".join(removed))
    if left:
        lines.append("Left behind, to remove by hand:")
        lines.extend(f"  {what}" for what in left)
    else:
        lines.append("Nothing is left behind.")
    lines += ["", f"Execution:  {console_link(change.execution)}"]
    subject = f"vss-restore: released {change.name} ({change.status})"
    if left:
        subject = f"vss-restore: {len(left)} resource(s) left by {change.name} ({change.status})"
    return Alert(subject, "\n".join(lines))


def refused_alert(change: StatusChange, *, reason: str) -> Alert:
    """An execution that never got to a restore: what it was asked, and why it stopped."""
    refused = change.error == InvalidRequest.__name__
    what = "refused its request" if refused else "failed before it restored anything"
    request = change.input
    if len(request) > MAX_INPUT_IN_ALERT:
        request = request[: MAX_INPUT_IN_ALERT - 1] + "…"
    lines = [
        f"The execution {change.name} {what}: no restore was tried, nothing was created.",
        "",
        f"Error:      {reason}",
        f"Input:      {request or 'not included in the event'}",
        f"Execution:  {console_link(change.execution)}",
        "",
        "Each event like this one fails the same way: look at what sent it."
        if refused
        else "Its snapshots were not checked: start it again once the cause is fixed.",
    ]
    headline = "request refused" if refused else "failed before any restore"
    subject = f"vss-restore: {headline} ({change.error or 'UnknownError'}) by {change.name}"
    return Alert(subject, "\n".join(lines))


def describe_volume(volume: dict[str, Any]) -> str:
    """A volume as an operator needs it to find it: ID, state, where it is attached."""
    attached = [
        f"{a.get('State')} on {a.get('InstanceId')} at {a.get('Device')}"
        for a in volume.get("Attachments", [])
        if a.get("State") != "detached"
    ]
    where = f", {'; '.join(attached)}" if attached else ""
    source = tags.as_dict(volume.get("Tags")).get(tags.SOURCE_SNAPSHOT)
    of = f" of {source}" if source else ""
    return f"{volume.get('VolumeId')} ({volume.get('State')}{where}){of}"
