"""The message operators read when a restore fails: what, where, why, and where to look."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Alert:
    subject: str
    message: str


def console_link(execution_arn: str) -> str:
    region = execution_arn.split(":")[3] if execution_arn.count(":") >= 3 else ""
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{execution_arn}"
    )


def failure_alert(
    *,
    snapshot_id: str,
    instance_id: str,
    volume_id: str,
    reason: str,
    execution_arn: str,
    verdict: list[str] | None = None,
) -> Alert:
    error = reason.split(":", 1)[0]
    lines = [
        f"The restore of {snapshot_id} failed: the backup is not verified consistent.",
        "",
        f"Snapshot:   {snapshot_id}",
        f"Instance:   {instance_id or 'unknown'}",
        f"Error:      {reason}",
        f"Temporary volume: {volume_id + ' (removed)' if volume_id else 'none was created'}",
        f"Execution:  {console_link(execution_arn)}",
        *(["", "How far the restore got, volume by volume:", *verdict] if verdict else []),
        "",
        "The snapshot carries the tag vss-restore:status=failed with this reason.",
    ]
    return Alert(f"vss-restore: {snapshot_id} failed ({error})", "\n".join(lines))
