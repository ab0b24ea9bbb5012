"""Lambda: one step of the boot test of a system drive's consistent snapshot
(docs/boot-test.md); the state machine waits between steps until it is done."""

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
    return boot_test.advance(
        Ec2(),
        Ssm(),
        Sns(),
        Settings.from_environment(),
        execution=text(event, "execution"),
        snapshot_id=text(event, "consistent.snapshot_id", SNAPSHOT_ID),
        state=optional(event, "boot_test.state"),
        now=clock.now(),
    )
