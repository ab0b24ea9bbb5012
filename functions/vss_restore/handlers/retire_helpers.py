"""Lambda (schedule, HelperMode=fleet): terminate the fleet's helpers that are idle, drained,
too old or orphaned, and give their places back; send a draining helper's line elsewhere."""

from typing import Any

from vss_restore import fleet
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.places import Places
from vss_restore.aws.states import StepFunctions
from vss_restore.observability import observed
from vss_restore.settings import Settings


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    if settings.helper_mode != "fleet":
        return {"retired": {}}
    ledger = Ledger(settings.ledger_table)
    places = Places(settings.ledger_table)
    return {"retired": fleet.retire_idle(Ec2(), ledger, StepFunctions(), places, settings)}
