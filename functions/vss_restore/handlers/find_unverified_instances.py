"""Lambda (hourly schedule): count the VSS-tagged instances without a recent verified backup."""

from typing import Any

from vss_restore import unverified
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.sns import Sns
from vss_restore.observability import observed
from vss_restore.settings import Settings


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    return unverified.find_unverified_instances(
        Ec2(), Ledger(settings.ledger_table), Sns(), settings
    )
