"""Lambda: the failure path: remove our temporary volume and mark the snapshot failed."""

from typing import Any

from vss_restore import cleanup
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.sns import Sns
from vss_restore.aws.ssm import Ssm
from vss_restore.aws.states import StepFunctions
from vss_restore.logic.resolve import RESTORE, VERIFY
from vss_restore.logic.verdict import VERIFY_ONLY_RULE, volume_verdicts
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import SNAPSHOT_ID, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    return cleanup.clean_up(
        Ec2(),
        Sns(),
        Ledger(settings.ledger_table),
        snapshot_id=text(event, "request.snapshot_id", SNAPSHOT_ID),
        volume_id=str(optional(event, "volume.volume_id") or ""),
        instance_id=str(optional(event, "source.instance_id") or ""),
        helper_id=str(optional(event, "helper.instance_id") or ""),
        restoring=optional(event, "source.action") in {RESTORE, VERIFY},
        error=optional(event, "error"),
        execution=text(event, "execution"),
        alert_topic_arn=settings.alert_topic_arn,
        states=StepFunctions(),
        helper_concurrency=settings.helper_concurrency,
        disk_tool=cleanup.DiskTool(Ssm(), settings.disk_tool_document),
        reverify=optional(event, "request.reverify") is True,
        **_known_verdict(event),
    )


def _known_verdict(event: dict[str, Any]) -> dict[str, Any]:
    """The rule and each volume as far as the restore got: after the Inspect (and the plan,
    unless verify-only); nothing before."""
    inspection = optional(event, "progress.inspect.report")
    plan = optional(event, "plan")
    verify_only = optional(event, "source.action") == VERIFY
    if not isinstance(inspection, dict) or not (verify_only or isinstance(plan, dict)):
        return {}
    return {
        "rule": VERIFY_ONLY_RULE if verify_only else str(plan["rule"]),
        "volumes": volume_verdicts(
            inspection,
            None if verify_only else plan,
            optional(event, "progress.revert.report"),
            None,
        ),
    }
