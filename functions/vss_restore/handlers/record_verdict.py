"""Lambda: tag the source snapshot verified and return the restore's verdict, volume by volume."""

from datetime import datetime
from typing import Any

from vss_restore import clock, steps, tags
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.logic.resolve import VERIFY
from vss_restore.logic.verdict import (
    RULES,
    VERIFY_ONLY_RULE,
    VolumeVerdict,
    is_weaker,
    reason,
    require_every_shadowed_volume_reverted,
    volume_verdicts,
)
from vss_restore.observability import (
    RESTORE_DURATION,
    RESTORE_REVERIFIED,
    RESTORE_VERIFIED,
    count,
    observed,
    seconds,
)
from vss_restore.settings import Settings
from vss_restore.state import SNAPSHOT_ID, lookup, optional, text


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    snapshot_id = text(event, "request.snapshot_id", SNAPSHOT_ID)
    verify_only = optional(event, "source.action") == VERIFY
    reverify = optional(event, "request.reverify") is True
    # A snapshot that was consistent already is its own consistent snapshot; a
    # re-verification keeps none (the night's restore kept one).
    consistent = (
        snapshot_id
        if verify_only
        else ""
        if reverify
        else text(event, "consistent.snapshot_id", SNAPSHOT_ID)
    )
    # lookup names what is missing (an execution started before this version, say).
    plan = (
        None if verify_only else {**lookup(event, "plan"), "volumes": lookup(event, "plan.volumes")}
    )
    rule = VERIFY_ONLY_RULE if verify_only else text(event, "plan.rule")
    volumes = volume_verdicts(
        lookup(event, "progress.inspect.report"),
        plan,
        optional(event, "progress.revert.report"),
        optional(event, "progress.check.report"),
    )
    ec2 = Ec2()
    if reverify:
        return _reverified(ec2, event, snapshot_id, rule, volumes)
    steps.record_verified(
        ec2,
        snapshot_id,
        consistent,
        text(event, "execution"),
        rule=rule,
        volumes=volumes,
        checked=optional(event, "source.check") is not False,
    )
    details = {
        "rule": rule,
        "rule_weaker": is_weaker(rule),
        "rule_means": RULES[rule],
        "drive_letters": str(optional(event, "source.drive_letters") or ""),
        "volumes": [v.as_dict() for v in volumes],
    }
    settings = Settings.from_environment()
    Ledger(settings.ledger_table).finish(
        snapshot_id, text(event, "execution"), tags.VERIFIED, details=details
    )
    count(RESTORE_VERIFIED)
    if started_at := optional(event, "source.started_at"):
        seconds(
            RESTORE_DURATION, (clock.now() - datetime.fromisoformat(started_at)).total_seconds()
        )
    kept = bool(optional(event, "request.keep_volume"))
    return {
        "snapshot_id": snapshot_id,
        "status": tags.VERIFIED,
        "reason": "",
        "consistent_snapshot": consistent,
        "shadow_copies_reverted": list(optional(event, "plan.shadow_copy_ids") or []),
        **details,
        "volume_kept": text(event, "volume.volume_id") if kept else "",
    }


def _reverified(
    ec2: Ec2, event: dict[str, Any], snapshot_id: str, rule: str, volumes: list[VolumeVerdict]
) -> dict[str, Any]:
    """A re-verification passed: its own tags, the verdict and the ledger's details as the
    night's restore left them (the claim goes back to verified)."""
    require_every_shadowed_volume_reverted(volumes)
    execution = text(event, "execution")
    checked = optional(event, "source.check") is not False
    steps.record_reverified(
        ec2, snapshot_id, tags.VERIFIED, reason(rule, volumes, checked), execution
    )
    Ledger(Settings.from_environment().ledger_table).finish(snapshot_id, execution, tags.VERIFIED)
    count(RESTORE_REVERIFIED)
    return {
        "snapshot_id": snapshot_id,
        "status": tags.VERIFIED,
        "reason": "",
        "reverify": True,
        "consistent_snapshot": "",
        "shadow_copies_reverted": list(optional(event, "plan.shadow_copy_ids") or []),
        "rule": rule,
        "volumes": [v.as_dict() for v in volumes],
        "volume_kept": text(event, "volume.volume_id")
        if optional(event, "request.keep_volume")
        else "",
    }
