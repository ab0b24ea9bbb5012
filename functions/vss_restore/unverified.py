"""The hourly look for VSS-tagged instances without a backup verified in the last 26 hours.

It counts them (the UnverifiedInstances metric, which the alarm watches) and, when the set
of such instances differs from the last run's (kept in the ledger), publishes one alert
naming them: an instance that stays unverified is not announced again every hour.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from vss_restore import clock, tags
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.sns import Sns
from vss_restore.logic.unverified import judge, unverified_alert
from vss_restore.observability import UNVERIFIED_INSTANCES, logger, metrics
from vss_restore.settings import Settings


def find_unverified_instances(
    ec2: Ec2, ledger: Ledger, sns: Sns, settings: Settings
) -> dict[str, Any]:
    now = clock.now()
    instances = ec2.instances_tagged(settings.vss_tag_key, settings.vss_tag_value)
    snapshots = [
        *ec2.completed_snapshots_tagged(settings.vss_tag_key, settings.vss_tag_value),
        # AWS's own VSS tooling: its verified snapshots count too.
        *ec2.completed_snapshots_tagged(tags.AWS_APP_CONSISTENT, "true"),
    ]
    findings = judge(instances, snapshots, settings, now)
    for found in findings.unverified:
        logger.warning("no backup verified in 26 h", extra={"unverified": found.as_dict()})
    if findings.stopped:
        logger.info("stopped, not counted", extra={"instances": findings.stopped})
    metrics.add_metric(
        name=UNVERIFIED_INSTANCES, unit=MetricUnit.Count, value=len(findings.unverified)
    )
    previous = ledger.unverified_instances()
    alerted = findings.instance_ids != previous
    if alerted:
        if settings.alert_topic_arn:
            alert = unverified_alert(findings, previous)
            sns.publish(settings.alert_topic_arn, alert.subject, alert.message)
        # After the alert: if noting fails, the next run alerts again rather than never.
        ledger.note_unverified_instances(findings.instance_ids, int(now.timestamp()))
    summary = {
        "unverified_instances": [
            {"instance_id": u.instance_id, "why": u.why} for u in findings.unverified
        ],
        "verified_instances": findings.verified,
        "launched_recently": findings.launched_recently,
        "stopped": findings.stopped,
        "alerted": alerted and bool(settings.alert_topic_arn),
    }
    logger.info("looked for unverified instances", extra={"summary": summary})
    return summary
