"""Lambda (EventBridge): release what a failed, timed-out or aborted execution still held."""

from typing import Any

from vss_restore import release
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.sns import Sns
from vss_restore.aws.ssm import Ssm
from vss_restore.aws.states import StepFunctions
from vss_restore.cleanup import DiskTool
from vss_restore.logic.release_report import parse_status_change
from vss_restore.observability import observed
from vss_restore.settings import Settings


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    return release.release_execution(
        Ec2(),
        Ledger(settings.ledger_table),
        Sns(),
        parse_status_change(event),
        alert_topic_arn=settings.alert_topic_arn,
        states=StepFunctions(),
        helper_concurrency=settings.helper_concurrency,
        disk_tool=DiskTool(Ssm(), settings.disk_tool_document),
    )
