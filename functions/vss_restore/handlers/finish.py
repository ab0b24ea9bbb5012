"""Lambda: end the execution with every verdict, failing it if any restore failed."""

import json
from typing import Any

from vss_restore import tags
from vss_restore.errors import RestoreFailed
from vss_restore.observability import observed
from vss_restore.state import lookup


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    verdicts = list(lookup(event, "verdicts"))
    failed = [v for v in verdicts if v.get("status") == tags.FAILED]
    if failed:
        raise RestoreFailed(json.dumps({"failed": failed, "verdicts": verdicts}))
    return {"verdicts": verdicts}
