"""Lambda (weekly schedule): restore again a random older verified backup per instance."""

from typing import Any

from vss_restore import reverify
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.states import StepFunctions
from vss_restore.observability import observed
from vss_restore.settings import Settings


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return reverify.start_reverifications(Ec2(), StepFunctions(), Settings.from_environment())
