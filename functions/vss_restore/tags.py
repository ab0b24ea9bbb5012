"""The tag keys vss-restore reads and writes: the one definition every part uses."""

from typing import Final

PREFIX: Final = "vss-restore:"

# Written by the nightly backup on each EBS snapshot, read by the resolver.
SHADOW_COPY_ID: Final = f"{PREFIX}shadow-copy-id"
SHADOW_SET_ID: Final = f"{PREFIX}shadow-set-id"
INSTANCE_ID: Final = f"{PREFIX}instance-id"
DRIVE_LETTERS: Final = f"{PREFIX}drive-letters"
DEVICE: Final = f"{PREFIX}device"
# The backup's tags by name; BackupDocument's $TagKeys holds the same names and keys.
BACKUP_KEYS: Final = {
    "INSTANCE_ID": INSTANCE_ID,
    "DRIVE_LETTERS": DRIVE_LETTERS,
    "DEVICE": DEVICE,
    "SHADOW_COPY_ID": SHADOW_COPY_ID,
    "SHADOW_SET_ID": SHADOW_SET_ID,
}

# Put on everything the workflow creates; only resources carrying RESOURCE may be
# detached or deleted by it.
RESOURCE: Final = f"{PREFIX}resource"
TEMPORARY_VOLUME: Final = "temporary-volume"
CONSISTENT_SNAPSHOT: Final = "consistent-snapshot"
SOURCE_SNAPSHOT: Final = f"{PREFIX}source-snapshot"
EXECUTION: Final = f"{PREFIX}execution"
# On a consistent snapshot, with the backup's INSTANCE_ID, DRIVE_LETTERS, DEVICE and
# SHADOW_SET_ID copied from its source: when the source snapshot was taken (ISO 8601, UTC),
# so that "D: of web1 as of last Tuesday" is one DescribeSnapshots away.
BACKUP_TIME: Final = f"{PREFIX}backup-time"
# What a consistent snapshot carries over from its source snapshot (tag keys).
LINEAGE_KEYS: Final = (INSTANCE_ID, DRIVE_LETTERS, DEVICE, SHADOW_SET_ID, BACKUP_TIME)

# The verdict, written on the source snapshot.
STATUS: Final = f"{PREFIX}status"
CHECKED_AT: Final = f"{PREFIX}checked-at"
RESULT_SNAPSHOT: Final = f"{PREFIX}consistent-snapshot"
REASON: Final = f"{PREFIX}reason"
# Which rule chose the shadow copies (logic/plan.py; "verify-only", or "none" when the
# restore failed before a plan), and each volume in a few words (logic/verdict.py).
RULE: Final = f"{PREFIX}rule"
VOLUMES: Final = f"{PREFIX}volumes"
VERIFIED: Final = "verified"
FAILED: Final = "failed"

VERDICT_KEYS: Final = (STATUS, CHECKED_AT, RESULT_SNAPSHOT, EXECUTION, REASON, RULE, VOLUMES)

# A re-verification (the weekly sample of older verified backups, reverify.py) writes its
# own tags beside the verdict, never over it: the verdict says what the night's restore
# found, these what the latest re-restore found (a key disabled since, say).
REVERIFIED_AT: Final = f"{PREFIX}reverified-at"
REVERIFY_RESULT: Final = f"{PREFIX}reverify-result"  # VERIFIED | FAILED
REVERIFY_REASON: Final = f"{PREFIX}reverify-reason"
REVERIFY_EXECUTION: Final = f"{PREFIX}reverify-execution"
REVERIFY_KEYS: Final = (REVERIFIED_AT, REVERIFY_RESULT, REVERIFY_REASON, REVERIFY_EXECUTION)

# The boot test of a system drive (docs/boot-test.md), on the consistent snapshot it booted:
# when, BOOTED | FAILED | NOT_TESTABLE, why in a few words, and the throwaway instance's
# billed seconds. The throwaway instance and its launch root carry RESOURCE=BOOT_TEST_INSTANCE,
# the volume made from the consistent snapshot RESOURCE=BOOT_TEST_ROOT: nothing else may be
# stopped, detached, terminated or deleted by the boot test (in code and in IAM).
BOOT_TESTED_AT: Final = f"{PREFIX}boot-tested-at"
BOOT_TEST: Final = f"{PREFIX}boot-test"
BOOT_TEST_REASON: Final = f"{PREFIX}boot-test-reason"
BOOT_TEST_SECONDS: Final = f"{PREFIX}boot-test-seconds"
BOOT_TEST_KEYS: Final = (BOOT_TESTED_AT, BOOT_TEST, BOOT_TEST_REASON, BOOT_TEST_SECONDS)
BOOTED: Final = "booted"
NOT_TESTABLE: Final = "not-testable"
BOOT_TEST_INSTANCE: Final = "boot-test-instance"
BOOT_TEST_ROOT: Final = "boot-test-root"

# Snapshots made by AWS's own VSS tooling (snapshots taken during the freeze).
AWS_APP_CONSISTENT: Final = "AppConsistent"
AWS_VSS_CONFIG: Final = "AwsVssConfig"

# An instance allowed to act as the Windows helper.
HELPER: Final = f"{PREFIX}helper"
HELPER_VALUE: Final = "true"
# On a helper the fleet launched (HelperMode=fleet), with HELPER=HELPER_VALUE: only an
# instance with both may be terminated by the workflow (in code and in IAM).
LAUNCHED_HELPER: Final = "helper"

MAX_VALUE_LENGTH: Final = 256


def as_dict(tag_list: list[dict[str, str]] | None) -> dict[str, str]:
    """Turn EC2's [{"Key": k, "Value": v}] into {k: v}."""
    return {tag["Key"]: tag["Value"] for tag in tag_list or []}


def as_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """Turn {k: v} into EC2's [{"Key": k, "Value": v}], values cut to EC2's limit."""
    return [{"Key": key, "Value": value[:MAX_VALUE_LENGTH]} for key, value in tags.items()]
