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
    reverify: bool = False,
) -> Alert:
    error = reason.split(":", 1)[0]
    if reverify:
        # A backup verified before cannot be restored now: a key disabled, a permission
        # removed, a helper changed since. Its verdict tags still say verified.
        headline = (
            f"The re-verification of {snapshot_id} failed: this backup, verified before, "
            "cannot be restored and checked now."
        )
        closing = (
            "The snapshot keeps its verdict; vss-restore:reverify-result=failed and "
            "vss-restore:reverify-reason carry this reason."
        )
        subject = f"vss-restore: re-verification of {snapshot_id} failed ({error})"
    else:
        headline = f"The restore of {snapshot_id} failed: the backup is not verified consistent."
        closing = "The snapshot carries the tag vss-restore:status=failed with this reason."
        subject = f"vss-restore: {snapshot_id} failed ({error})"
    lines = [
        headline,
        "",
        f"Snapshot:   {snapshot_id}",
        f"Instance:   {instance_id or 'unknown'}",
        f"Error:      {reason}",
        f"Temporary volume: {volume_id + ' (removed)' if volume_id else 'none was created'}",
        f"Execution:  {console_link(execution_arn)}",
        *(["", "How far the restore got, volume by volume:", *verdict] if verdict else []),
        "",
        closing,
    ]
    return Alert(subject[:100], "\n".join(lines))
