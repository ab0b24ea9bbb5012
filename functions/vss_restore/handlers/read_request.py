"""Lambda: read the execution input (EventBridge event or on-demand) into restore requests."""

from typing import Any

from vss_restore.logic.request import parse_request
from vss_restore.observability import observed


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"restores": [request.as_dict() for request in parse_request(event)]}
