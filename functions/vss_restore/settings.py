"""The handlers' configuration, read once from the environment into one typed object."""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from vss_restore.errors import InvalidRequest

INSTANCE_ID_PATTERN = re.compile(r"^i-[0-9a-f]{8,17}$")
# How the helper is found. "named": among HelperInstanceIds. "fleet" (helpers the stack
# launches for each restore) is issue #13's next part, not built yet.
HELPER_MODES = ("named",)
# More helpers than this is a fleet: HelperMode=fleet, once it exists.
MAX_HELPERS = 20


@dataclass(frozen=True)
class Settings:
    vss_tag_key: str = "ConsistentSnapshot"
    vss_tag_value: str = "WindowsVSS"
    helper_mode: str = "named"
    helper_instance_ids: tuple[str, ...] = ()
    # The origin's unsafe shortcut: restore a snapshot on the instance it was taken from.
    allow_source_as_helper: bool = False
    disk_tool_document: str = "vss-restore-DiskTool"
    volume_type: str = "gp3"
    check_after_revert: bool = True
    validation_script: str = ""
    alert_topic_arn: str = ""
    ledger_table: str = ""
    helper_concurrency: int = 1
    # How long a restore may wait in line for a helper's turn (template: MaxWaitHours).
    max_wait_hours: int = 36
    # The daily reconciliation (handlers/reconcile.py) only.
    state_machine_arn: str = ""
    reconcile_days: int = 3
    orphan_volume_hours: int = 24
    delete_orphan_volumes: bool = False
    # The daily retention (handlers/apply_retention.py) only: grandfather-father-son keeps of
    # each drive's nights, a dry run until DELETE_EXPIRED_SNAPSHOTS is "true".
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 3
    delete_expired_snapshots: bool = False
    one_copy: bool = False
    # The weekly re-verification (handlers/start_reverifications.py) only: the window, in
    # days, its sample of older verified backups is drawn from.
    reverify_window_days: int = 30

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        settings = cls(
            vss_tag_key=env.get("VSS_TAG_KEY", cls.vss_tag_key),
            vss_tag_value=env.get("VSS_TAG_VALUE", cls.vss_tag_value),
            helper_mode=_helper_mode(env.get("HELPER_MODE", cls.helper_mode)),
            helper_instance_ids=_instance_ids(env.get("HELPER_INSTANCE_IDS", "")),
            allow_source_as_helper=_true_or_false(
                env, "ALLOW_SOURCE_AS_HELPER", cls.allow_source_as_helper
            ),
            disk_tool_document=env.get("DISK_TOOL_DOCUMENT", cls.disk_tool_document),
            volume_type=env.get("VOLUME_TYPE", cls.volume_type),
            check_after_revert=env.get("CHECK_AFTER_REVERT", "true").lower() != "false",
            validation_script=env.get("VALIDATION_SCRIPT", cls.validation_script),
            alert_topic_arn=env.get("ALERT_TOPIC_ARN", cls.alert_topic_arn),
            ledger_table=env.get("LEDGER_TABLE", cls.ledger_table),
            helper_concurrency=int(env.get("HELPER_CONCURRENCY", str(cls.helper_concurrency))),
            max_wait_hours=_whole_number(env, "MAX_WAIT_HOURS", cls.max_wait_hours, 1, 168),
            state_machine_arn=_state_machine_arn(env.get("STATE_MACHINE_ARN", "")),
            reconcile_days=_whole_number(env, "RECONCILE_DAYS", cls.reconcile_days, 1, 30),
            orphan_volume_hours=_whole_number(
                env, "ORPHAN_VOLUME_HOURS", cls.orphan_volume_hours, 1, 720
            ),
            delete_orphan_volumes=_true_or_false(
                env, "DELETE_ORPHAN_VOLUMES", cls.delete_orphan_volumes
            ),
            keep_daily=_whole_number(env, "KEEP_DAILY", cls.keep_daily, 1, 365),
            keep_weekly=_whole_number(env, "KEEP_WEEKLY", cls.keep_weekly, 0, 520),
            keep_monthly=_whole_number(env, "KEEP_MONTHLY", cls.keep_monthly, 0, 120),
            delete_expired_snapshots=_true_or_false(
                env, "DELETE_EXPIRED_SNAPSHOTS", cls.delete_expired_snapshots
            ),
            one_copy=_true_or_false(env, "ONE_COPY", cls.one_copy),
            reverify_window_days=_whole_number(
                env, "REVERIFY_WINDOW_DAYS", cls.reverify_window_days, 1, 365
            ),
        )
        if settings.helper_concurrency < 1:
            raise InvalidRequest(f"HELPER_CONCURRENCY {settings.helper_concurrency} is below 1")
        return settings


def _helper_mode(value: str) -> str:
    if value not in HELPER_MODES:
        raise InvalidRequest(
            f"HELPER_MODE {value!r} is not one of {', '.join(HELPER_MODES)}"
            " (fleet is not built yet)"
        )
    return value


def _instance_ids(text: str) -> tuple[str, ...]:
    """A comma-separated list of instance IDs, each once, in the order given."""
    ids = [part.strip() for part in text.split(",") if part.strip()]
    for instance_id in ids:
        if not INSTANCE_ID_PATTERN.match(instance_id):
            raise InvalidRequest(f"HELPER_INSTANCE_IDS: {instance_id!r} is not an instance ID")
    unique = tuple(dict.fromkeys(ids))
    if len(unique) > MAX_HELPERS:
        raise InvalidRequest(
            f"HELPER_INSTANCE_IDS names {len(unique)} helpers, more than {MAX_HELPERS}"
        )
    return unique


STATE_MACHINE_ARN = re.compile(r"^arn:[\w-]+:states:[\w-]+:\d{12}:stateMachine:[\w-]{1,80}$")


def _state_machine_arn(value: str) -> str:
    if value and not STATE_MACHINE_ARN.match(value):
        raise InvalidRequest(f"STATE_MACHINE_ARN {value!r} is not a state machine ARN")
    return value


def _whole_number(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = env.get(name, str(default))
    try:
        value = int(text)
    except ValueError:
        raise InvalidRequest(f"{name} {text!r} is not a whole number") from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} {value} is not between {low} and {high}")
    return value


def _true_or_false(env: Mapping[str, str], name: str, default: bool) -> bool:
    """Strictly "true" or "false": a typo must not switch on a setting that deletes."""
    text = env.get(name, str(default).lower()).lower()
    if text not in {"true", "false"}:
        raise InvalidRequest(f"{name} {text!r} is neither true nor false")
    return text == "true"
