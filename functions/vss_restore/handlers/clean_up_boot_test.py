"""Lambda: after a failed boot test step, record the failure on the consistent snapshot and
remove the throwaway instance and volumes of this execution (retried while they go)."""

import contextlib
import json
from typing import Any

from vss_restore import boot_test, clock
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.sns import Sns
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import SNAPSHOT_ID, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    error = optional(event, "boot_test_error") or {}
    cause = str(error.get("Cause", ""))
    # A Lambda's error: its Cause is the JSON of errorMessage, errorType ...
    with contextlib.suppress(ValueError, AttributeError):
        cause = str(json.loads(cause).get("errorMessage", cause))
    said = f"{error.get('Error', 'error')}: {cause}".strip(": ")
    return boot_test.clean_up(
        Ec2(),
        Sns(),
        Settings.from_environment(),
        execution=text(event, "execution"),
        snapshot_id=text(event, "consistent.snapshot_id", SNAPSHOT_ID),
        state=optional(event, "boot_test.state"),
        error=said,
        now=clock.now(),
    )
