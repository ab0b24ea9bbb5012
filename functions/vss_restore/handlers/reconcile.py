"""Lambda (daily schedule): restore VSS snapshots no event restored, report orphan volumes,
remove what lost boot tests left."""

from typing import Any

from vss_restore import reconcile
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.sns import Sns
from vss_restore.aws.ssm import Ssm
from vss_restore.aws.states import StepFunctions
from vss_restore.cleanup import DiskTool
from vss_restore.observability import observed
from vss_restore.settings import Settings


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    return reconcile.reconcile(
        Ec2(),
        Ledger(settings.ledger_table),
        StepFunctions(),
        Sns(),
        settings,
        DiskTool(Ssm(), settings.disk_tool_document),
    )
