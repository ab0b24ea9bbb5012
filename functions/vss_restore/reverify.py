"""The weekly re-verification: restore again a random older verified backup per instance
(or, its backup deleted by OneCopy, check that night's consistent snapshot again).

It only starts restores, in re-verify mode (the workflow's request field `reverify`): the
workflow restores, reverts and checks as on the night, keeps no consistent snapshot (the
night's restore kept one; retention handles that one), writes the outcome to the
vss-restore:reverify-* tags beside the verdict, and alerts when it fails.
"""

import random
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from vss_restore import clock, tags
from vss_restore.aws.ec2 import Ec2, is_snapshot_ours
from vss_restore.aws.states import StepFunctions
from vss_restore.errors import InvalidRequest
from vss_restore.logic import reverify as rules
from vss_restore.observability import REVERIFY_STARTED, logger, metrics
from vss_restore.settings import Settings


def start_reverifications(ec2: Ec2, sfn: StepFunctions, settings: Settings) -> dict[str, Any]:
    if not settings.state_machine_arn:
        raise InvalidRequest("STATE_MACHINE_ARN is not set: there is nothing to start restores on")
    now = clock.now()
    marker = (settings.vss_tag_key, settings.vss_tag_value)
    # The nightly backup's snapshots only: the marker alone may be on anyone's snapshot.
    backups = [s for s in ec2.snapshots_tagged(*marker) if is_snapshot_ours(s, *marker)]
    # And our consistent snapshots (tags and description): with OneCopy an older night has
    # no backup left, only its consistent snapshot.
    consistent = [
        s
        for s in ec2.snapshots_tagged(tags.RESOURCE, tags.CONSISTENT_SNAPSHOT)
        if is_snapshot_ours(s, *marker)
    ]
    picks = rules.sample(
        backups,
        now,
        settings.reverify_window_days,
        random.Random(rules.seed(now)),
        consistent=consistent,
    )
    started = []
    for pick in picks:
        payload = {"snapshot_id": pick.snapshot_id, "reverify": True}
        if sfn.start(settings.state_machine_arn, rules.execution_name(pick, now), payload):
            started.append(pick.snapshot_id)
    metrics.add_metric(name=REVERIFY_STARTED, unit=MetricUnit.Count, value=len(started))
    summary = {
        "window_days": settings.reverify_window_days,
        "picked": [p.as_dict() for p in picks],
        "started": started,
    }
    logger.info("re-verifications started", extra={"summary": summary})
    return summary
