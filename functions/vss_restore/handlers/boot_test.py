"""Lambda: one step of the boot test of a system drive's consistent snapshot
(docs/boot-test.md); the state machine waits between steps until it is done. After a failed
step (the Catch put `boot_test_error` in the state), the clean-up instead: the failure
recorded on the consistent snapshot, the throwaway instance and volumes of this execution
removed (retried while they go)."""

import contextlib
import json
from typing import Any

from vss_restore import boot_test, clock
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.sns import Sns
from vss_restore.aws.ssm import Ssm
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import SNAPSHOT_ID, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    execution = text(event, "execution")
    snapshot_id = text(event, "consistent.snapshot_id", SNAPSHOT_ID)
    state = optional(event, "boot_test.state")
    error = optional(event, "boot_test_error")
    if error is not None:
        return boot_test.clean_up(
            Ec2(),
            Sns(),
            Settings.from_environment(),
            execution=execution,
            snapshot_id=snapshot_id,
            state=state,
            error=_said(error),
            now=clock.now(),
        )
    return boot_test.advance(
        Ec2(),
        Ssm(),
        Sns(),
        Settings.from_environment(),
        execution=execution,
        snapshot_id=snapshot_id,
        state=state,
        now=clock.now(),
    )


def _said(error: Any) -> str:
    found = error if isinstance(error, dict) else {}
    cause = str(found.get("Cause", ""))
    # A Lambda's error: its Cause is the JSON of errorMessage, errorType ...
    with contextlib.suppress(ValueError, AttributeError):
        cause = str(json.loads(cause).get("errorMessage", cause))
    return f"{found.get('Error', 'error')}: {cause}".strip(": ")
