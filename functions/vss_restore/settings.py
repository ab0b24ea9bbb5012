"""The handlers' configuration, read once from the environment into one typed object."""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from vss_restore.errors import InvalidRequest
from vss_restore.logic import pacing

INSTANCE_ID_PATTERN = re.compile(r"^i-[0-9a-f]{8,17}$")
# How the helper is found. "named": among HelperInstanceIds. "fleet": helpers the stack
# launches for the restores (logic/fleet.py).
HELPER_MODES = ("named", "fleet")
SUBNET_ID_PATTERN = re.compile(r"^subnet-[0-9a-f]{8,17}$")
SECURITY_GROUP_PATTERN = re.compile(r"^sg-[0-9a-f]{8,17}$")
INSTANCE_PROFILE_ARN = re.compile(r"^arn:[\w-]+:iam::\d{12}:instance-profile/[\w+=,.@/-]{1,128}$")
# AWS's public parameter for the latest Windows Server 2022 English Full Base AMI (EC2 User
# Guide, "Find a Windows AMI": /aws/service/ami-windows-latest/...).
DEFAULT_HELPER_IMAGE = "/aws/service/ami-windows-latest/Windows_Server-2022-English-Full-Base"
HELPER_IMAGE_PATTERN = re.compile(r"^(ami-[0-9a-f]{8,17}|/[A-Za-z0-9_./-]{1,1010})$")
INSTANCE_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
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
    # HelperMode=fleet only: where and how the helpers are launched (logic/fleet.py).
    helper_subnet_ids: tuple[str, ...] = ()
    helper_security_group: str = ""
    helper_instance_profile: str = ""
    helper_image: str = DEFAULT_HELPER_IMAGE
    helper_instance_type: str = "m6i.large"
    max_helpers: int = 5
    helper_idle_minutes: int = 10
    helper_max_hours: int = 12
    helper_boot_minutes: int = 20
    # The weekly re-verification (handlers/start_reverifications.py) only: the window, in
    # days, its sample of older verified backups is drawn from.
    reverify_window_days: int = 30
    # The boot test of system drives (docs/boot-test.md): "never" (the default) or "weekly";
    # its security group (no inbound; egress HTTPS to the SSM endpoints only, or none), its
    # subnets (HelperSubnetIds unless given), and the price shown for its instance-seconds.
    boot_test: str = "never"
    boot_test_security_group: str = ""
    boot_test_subnet_ids: tuple[str, ...] = ()
    # Its security group lets HTTPS out to the SSM endpoints (else nothing): a clone of an
    # SSM-managed source must then come Online; without, the status checks decide.
    boot_test_reaches_ssm: bool = False
    helper_hourly_price: float = 0.0
    # Our EC2 mutating calls' paces, calls a second (logic/pacing.py; template: PaceCreate*).
    paced_rates: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType(dict(pacing.DEFAULT_RATES))
    )

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
            helper_subnet_ids=_ids(env, "HELPER_SUBNET_IDS", SUBNET_ID_PATTERN, "a subnet ID"),
            helper_security_group=_matching(
                env, "HELPER_SECURITY_GROUP", SECURITY_GROUP_PATTERN, "a security group ID"
            ),
            helper_instance_profile=_matching(
                env, "HELPER_INSTANCE_PROFILE", INSTANCE_PROFILE_ARN, "an instance profile ARN"
            ),
            helper_image=_matching(
                env, "HELPER_IMAGE", HELPER_IMAGE_PATTERN, "an AMI ID or SSM parameter name"
            )
            or cls.helper_image,
            helper_instance_type=_matching(
                env, "HELPER_INSTANCE_TYPE", INSTANCE_TYPE_PATTERN, "an instance type"
            )
            or cls.helper_instance_type,
            max_helpers=_whole_number(env, "MAX_HELPERS", cls.max_helpers, 1, 100),
            helper_idle_minutes=_whole_number(
                env, "HELPER_IDLE_MINUTES", cls.helper_idle_minutes, 1, 240
            ),
            helper_max_hours=_whole_number(env, "HELPER_MAX_HOURS", cls.helper_max_hours, 1, 72),
            helper_boot_minutes=_whole_number(
                env, "HELPER_BOOT_MINUTES", cls.helper_boot_minutes, 5, 60
            ),
            reverify_window_days=_whole_number(
                env, "REVERIFY_WINDOW_DAYS", cls.reverify_window_days, 1, 365
            ),
            boot_test=_boot_test(env.get("BOOT_TEST", cls.boot_test)),
            boot_test_security_group=_matching(
                env, "BOOT_TEST_SECURITY_GROUP", SECURITY_GROUP_PATTERN, "a security group ID"
            ),
            boot_test_subnet_ids=_ids(env, "BOOT_TEST_SUBNET_IDS", SUBNET_ID_PATTERN, "a subnet ID")
            or _ids(env, "HELPER_SUBNET_IDS", SUBNET_ID_PATTERN, "a subnet ID"),
            boot_test_reaches_ssm=_true_or_false(env, "BOOT_TEST_SSM", cls.boot_test_reaches_ssm),
            helper_hourly_price=_price(env.get("HELPER_HOURLY_PRICE", "")),
            paced_rates=_paced_rates(env),
        )
        if settings.helper_mode == "fleet":
            _require_fleet(settings)
        if settings.helper_concurrency < 1:
            raise InvalidRequest(f"HELPER_CONCURRENCY {settings.helper_concurrency} is below 1")
        return settings


def _helper_mode(value: str) -> str:
    if value not in HELPER_MODES:
        raise InvalidRequest(f"HELPER_MODE {value!r} is not one of {', '.join(HELPER_MODES)}")
    return value


def _require_fleet(settings: Settings) -> None:
    """A fleet needs somewhere to launch: the stack passes these when HelperMode=fleet."""
    missing = [
        name
        for name, value in (
            ("HELPER_SUBNET_IDS", settings.helper_subnet_ids),
            ("HELPER_SECURITY_GROUP", settings.helper_security_group),
            ("HELPER_INSTANCE_PROFILE", settings.helper_instance_profile),
        )
        if not value
    ]
    if missing:
        raise InvalidRequest(f"HELPER_MODE fleet needs {', '.join(missing)}")


BOOT_TEST_MODES = ("never", "weekly")
PRICE_PATTERN = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,6})?$")


def _paced_rates(env: Mapping[str, str]) -> Mapping[str, float]:
    return MappingProxyType(
        {
            action: pacing.rate(action, env.get(name, "") or str(pacing.DEFAULT_RATES[action]))
            for action, name in pacing.ENVIRONMENT.items()
        }
    )


def _boot_test(value: str) -> str:
    mode = value.strip().lower()
    if mode not in BOOT_TEST_MODES:
        raise InvalidRequest(f"BOOT_TEST {value!r} is not one of {', '.join(BOOT_TEST_MODES)}")
    return mode


def _price(value: str) -> float:
    if not value.strip():
        return 0.0
    if not PRICE_PATTERN.match(value.strip()):
        raise InvalidRequest(f"HELPER_HOURLY_PRICE {value!r} is not a price in USD per hour")
    return float(value)


def require_boot_test(settings: Settings) -> None:
    """The boot test launches as the fleet does: the stack passes these to its function
    (only) when it is on."""
    if settings.boot_test == "never":
        raise InvalidRequest("BOOT_TEST is never: the boot test is off (template: BootTest)")
    missing = [
        name
        for name, value in (
            ("BOOT_TEST_SECURITY_GROUP", settings.boot_test_security_group),
            ("BOOT_TEST_SUBNET_IDS or HELPER_SUBNET_IDS", settings.boot_test_subnet_ids),
            ("HELPER_INSTANCE_PROFILE", settings.helper_instance_profile),
        )
        if not value
    ]
    if missing:
        raise InvalidRequest(f"BOOT_TEST {settings.boot_test} needs {', '.join(missing)}")


def _matching(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = env.get(name, "").strip()
    if value and not pattern.match(value):
        raise InvalidRequest(f"{name}: {value!r} is not {what}")
    return value


def _ids(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    """A comma-separated list, each once, in the order given (the operator's preference)."""
    ids = [part.strip() for part in env.get(name, "").split(",") if part.strip()]
    for value in ids:
        if not pattern.match(value):
            raise InvalidRequest(f"{name}: {value!r} is not {what}")
    return tuple(dict.fromkeys(ids))


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
