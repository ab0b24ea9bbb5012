"""Lambda: one look at the consistent snapshot: is it completed yet? Once it is, and only
with BootTest on, it says so (`boot_test`): the state machine then boot-tests it if it is a
system drive's and due (docs/boot-test.md)."""

from typing import Any

from vss_restore import steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import SNAPSHOT_ID, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    progress = steps.snapshot_progress(
        Ec2(),
        text(event, "consistent.snapshot_id", SNAPSHOT_ID),
        optional(event, "progress.snapshot_completed"),
    )
    found = progress.as_dict()
    if progress.ready and Settings.from_environment().boot_test != "never":
        found["boot_test"] = True
    return found
