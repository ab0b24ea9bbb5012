"""Whether a snapshot is restored or skipped, and why (logic/resolve.py)."""

from typing import Any

import pytest

from vss_restore import tags
from vss_restore.errors import SnapshotUnusable
from vss_restore.logic.resolve import (
    ALREADY_VERIFIED,
    NOT_COMPLETED,
    NOT_VSS,
    OWN_OUTPUT,
    RESTORE,
    SKIP,
    VERIFY,
    decide,
)
from vss_restore.settings import Settings

VSS_KEY, VSS_VALUE = Settings().vss_tag_key, Settings().vss_tag_value
SHADOW_COPY = "{6f1e0e7a-1111-4c5d-9e8f-000000000001}"
SHADOW_SET = "{0c9b8a7d-2222-4c5d-9e8f-000000000001}"


def described(**changes: Any) -> dict[str, Any]:
    """A VSS backup snapshot as DescribeSnapshots returns it, with `changes` applied."""
    snapshot_tags = {
        VSS_KEY: VSS_VALUE,
        tags.SHADOW_COPY_ID: SHADOW_COPY,
        tags.SHADOW_SET_ID: SHADOW_SET,
        tags.INSTANCE_ID: "i-0abc1234def567890",
    }
    snapshot_tags.update(changes.pop("tags", {}))
    snapshot: dict[str, Any] = {
        "SnapshotId": "snap-0a1b2c3d4e5f60718",
        "VolumeId": "vol-0aa11bb22cc33dd44",
        "VolumeSize": 30,
        "Encrypted": True,
        "State": "completed",
        "Tags": tags.as_list({k: v for k, v in snapshot_tags.items() if v is not None}),
    }
    snapshot.update(changes)
    return snapshot


def test_a_completed_vss_snapshot_is_restored_with_what_the_backup_recorded() -> None:
    decision = decide(described(), Settings())

    assert decision.action == RESTORE
    assert decision.reason == ""
    assert decision.snapshot_id == "snap-0a1b2c3d4e5f60718"
    assert decision.source_volume_id == "vol-0aa11bb22cc33dd44"
    assert decision.volume_size == 30
    assert decision.encrypted is True
    assert decision.shadow_copy_id == SHADOW_COPY
    assert decision.shadow_set_id == SHADOW_SET
    assert decision.instance_id == "i-0abc1234def567890"


def test_a_vss_snapshot_without_recorded_shadow_copies_is_still_restored() -> None:
    snapshot = described(tags={tags.SHADOW_COPY_ID: None, tags.SHADOW_SET_ID: None})

    decision = decide(snapshot, Settings())

    assert (decision.action, decision.shadow_copy_id, decision.shadow_set_id) == (RESTORE, "", "")


@pytest.mark.parametrize(
    "vss_tag",
    [None, "AppConsistent", "windowsvss"],
    ids=["no-vss-tag", "another-value", "value-in-another-case"],
)
def test_a_snapshot_not_tagged_for_vss_is_skipped_as_not_vss_tagged(vss_tag: str | None) -> None:
    decision = decide(described(tags={VSS_KEY: vss_tag}), Settings())

    assert (decision.action, decision.reason) == (SKIP, NOT_VSS)


def test_a_vss_snapshot_still_pending_is_skipped_as_not_completed() -> None:
    decision = decide(described(State="pending"), Settings())

    assert (decision.action, decision.reason) == (SKIP, NOT_COMPLETED)


def test_a_vss_snapshot_already_verified_is_skipped() -> None:
    decision = decide(described(tags={tags.STATUS: tags.VERIFIED}), Settings())

    assert (decision.action, decision.reason) == (SKIP, ALREADY_VERIFIED)


def test_a_vss_snapshot_that_failed_before_is_restored_again() -> None:
    decision = decide(described(tags={tags.STATUS: tags.FAILED}), Settings())

    assert decision.action == RESTORE


@pytest.mark.parametrize("resource", [tags.CONSISTENT_SNAPSHOT, tags.TEMPORARY_VOLUME])
def test_a_snapshot_made_by_the_workflow_is_skipped_as_its_own_output(resource: str) -> None:
    # Even if someone copied the VSS tag onto it: it must never trigger another restore.
    decision = decide(described(tags={tags.RESOURCE: resource}), Settings())

    assert (decision.action, decision.reason) == (SKIP, OWN_OUTPUT)


def test_a_vss_snapshot_in_the_error_state_is_unusable_and_says_why() -> None:
    snapshot = described(State="error", StateMessage="KMS key disabled")

    with pytest.raises(SnapshotUnusable, match=r"snap-0a1b2c3d4e5f60718 .*KMS key disabled"):
        decide(snapshot, Settings())


def test_an_untagged_snapshot_in_the_error_state_is_just_skipped() -> None:
    snapshot = described(State="error", tags={VSS_KEY: None})

    assert decide(snapshot, Settings()).reason == NOT_VSS


def test_the_vss_tag_key_and_value_come_from_the_settings() -> None:
    settings = Settings(vss_tag_key="Backup", vss_tag_value="NightlyVSS")
    custom = described(tags={VSS_KEY: None, "Backup": "NightlyVSS"})

    assert decide(custom, settings).action == RESTORE
    assert decide(described(), settings).reason == NOT_VSS


def test_a_snapshot_of_awss_own_vss_tooling_is_verified_without_a_revert() -> None:
    aws_vss = {VSS_KEY: None, tags.AWS_APP_CONSISTENT: "true", tags.AWS_VSS_CONFIG: "{}"}

    decision = decide(described(tags=aws_vss), Settings())

    assert (decision.action, decision.check) == (VERIFY, True)


def test_app_consistent_alone_is_not_awss_vss_tooling() -> None:
    decision = decide(described(tags={VSS_KEY: None, tags.AWS_APP_CONSISTENT: "true"}), Settings())

    assert (decision.action, decision.reason) == (SKIP, NOT_VSS)


@pytest.mark.parametrize("check_after_revert", [True, False])
def test_the_check_after_a_revert_follows_the_setting(check_after_revert: bool) -> None:
    decision = decide(described(), Settings(check_after_revert=check_after_revert))

    assert (decision.action, decision.check) == (RESTORE, check_after_revert)


def test_a_verify_only_snapshot_is_checked_even_when_checks_after_reverts_are_off() -> None:
    aws_vss = {tags.AWS_APP_CONSISTENT: "true", tags.AWS_VSS_CONFIG: "{}"}

    decision = decide(described(tags=aws_vss), Settings(check_after_revert=False))

    assert (decision.action, decision.check) == (VERIFY, True)


def test_an_encrypted_snapshot_carries_its_key_to_the_restore() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-4333-8444-555555555555"

    decision = decide(described(KmsKeyId=key), Settings())

    assert (decision.encrypted, decision.kms_key_id) == (True, key)
