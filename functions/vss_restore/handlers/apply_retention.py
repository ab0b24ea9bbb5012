"""Lambda (daily schedule): delete our snapshots past the retention's keeps (dry run by default)."""

from typing import Any

from vss_restore import retention
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.sns import Sns
from vss_restore.observability import observed
from vss_restore.settings import Settings


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    return retention.apply_retention(Ec2(), Ledger(settings.ledger_table), Sns(), settings)
