"""Logging and metrics for every handler, and the metric names in one place.

Tracing is Lambda's and Step Functions' own (`Tracing` in template.yaml): a segment per
invocation and per state. There is no Powertools Tracer: building one loads X-Ray's SDK
and a botocore client, which made every cold start about 1.8 times `import boto3`, for
subsegments per AWS call that the workflow's short handlers hardly need.
"""

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

METRICS_NAMESPACE = "VssRestore"
RESTORE_VERIFIED = "RestoreVerified"
RESTORE_FAILED = "RestoreFailed"
RESTORE_SKIPPED = "RestoreSkipped"
TEMPORARY_VOLUME_CREATED = "TemporaryVolumeCreated"
TEMPORARY_VOLUME_DELETED = "TemporaryVolumeDeleted"
RESTORE_DURATION = "RestoreDuration"  # seconds, from resolving the snapshot to its verdict
REVERT_DURATION = "RevertDuration"  # seconds the disk tool's Revert took
# Released after an execution that ended without its cleanup, and the daily reconciliation.
CLAIM_RELEASED = "ClaimReleased"
TEMPORARY_VOLUME_LEFT = "TemporaryVolumeLeft"
# An execution that FAILED before any restore: its request refused (InvalidRequest) or unread.
REQUEST_REFUSED = "RequestRefused"
RECONCILE_RESTORES_STARTED = "ReconcileRestoresStarted"
RECONCILE_RESTORES_REMAINING = "ReconcileRestoresRemaining"
ORPHAN_VOLUMES_FOUND = "OrphanVolumesFound"
ORPHAN_VOLUMES_DELETED = "OrphanVolumesDeleted"
# Daily retention (retention.py): our snapshots kept after the run, those past the keeps
# (what a dry run would delete), and those deleted.
SNAPSHOTS_KEPT = "SnapshotsKept"
SNAPSHOTS_EXPIRED = "SnapshotsExpired"
SNAPSHOTS_DELETED = "SnapshotsDeleted"
# The failure path: consistent snapshots of a restore that failed late, deleted.
CONSISTENT_SNAPSHOT_DELETED = "ConsistentSnapshotDeleted"
# Weekly re-verification (reverify.py): restores started, and how they ended (apart from
# RestoreVerified/RestoreFailed, which count the nights' first restores).
REVERIFY_STARTED = "ReverifyStarted"
RESTORE_REVERIFIED = "RestoreReverified"
RESTORE_REVERIFY_FAILED = "RestoreReverifyFailed"
# Hourly: VSS-tagged instances without a backup verified in the last 26 hours.
UNVERIFIED_INSTANCES = "UnverifiedInstances"

logger = Logger()
metrics = Metrics(namespace=METRICS_NAMESPACE)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

# Keys of the workflow state worth having on every log line.
_CORRELATION_PATHS = {
    "snapshot_id": ("request", "snapshot_id"),
    "volume_id": ("volume", "volume_id"),
    "helper": ("helper", "instance_id"),
    "execution": ("execution",),
}


def _correlation(event: Any) -> dict[str, str]:
    found = {}
    for name, path in _CORRELATION_PATHS.items():
        value: Any = event
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, str) and isinstance(event, dict):
            value = event.get(name)
        if isinstance(value, str):
            found[name] = value
    return found


def count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def seconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=value)


def observed(handler: Handler) -> Handler:
    """Wrap a handler with Powertools: structured logs with correlation keys, and metrics."""

    @functools.wraps(handler)
    def with_context(event: dict[str, Any], context: Any) -> dict[str, Any]:
        logger.append_keys(**_correlation(event))
        return handler(event, context)

    logged: Handler = logger.inject_lambda_context(clear_state=True)(with_context)
    return metrics.log_metrics(logged)
