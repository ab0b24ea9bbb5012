"""Lambda: pick the Windows helper and check it is running, Windows and SSM-online."""

from typing import Any

from vss_restore import steps
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ssm import Ssm
from vss_restore.observability import observed
from vss_restore.settings import Settings
from vss_restore.state import optional


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    helper = steps.prepare_helper(
        Ec2(),
        Ssm(),
        Settings.from_environment(),
        requested=str(optional(event, "request.helper_instance_id") or ""),
        backed_up_instance=str(optional(event, "source.instance_id") or ""),
        source_volume_id=str(optional(event, "source.source_volume_id") or ""),
    )
    return helper.as_dict()
