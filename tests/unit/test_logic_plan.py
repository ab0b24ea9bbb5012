"""Exactly which shadow copies are reverted on the attached disk, and why (logic/plan.py)."""

from typing import Any

import pytest

from vss_restore.errors import RevertRefused
from vss_restore.logic.plan import NEWEST, RECORDED_ID, RECORDED_SET, plan_revert

OTHER_VOLUME = "\\\\?\\Volume{ffffffff-0000-0000-0000-900000000000}\\"
SECOND_VOLUME = "\\\\?\\Volume{a1b2c3d4-0000-0000-0000-200000000000}\\"


@pytest.fixture
def inspected(sample: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Inspect report and the backup's source facts from the plan_revert sample."""
    event = sample("plan_revert")
    return event["report"], event["source"]


def shadow(report: dict[str, Any], number: int, **changes: Any) -> dict[str, Any]:
    """Another shadow copy like the report's first, with its own IDs."""
    copy = dict(report["shadow_copies"][0])
    copy["id"] = f"{{6f1e0e7a-1111-4c5d-9e8f-{number:012d}}}"
    copy["set_id"] = f"{{0c9b8a7d-2222-4c5d-9e8f-{number:012d}}}"
    copy.update(changes)
    return copy


def test_the_shadow_copy_recorded_at_backup_is_reverted(inspected: Any) -> None:
    report, source = inspected

    plan = plan_revert(report, recorded_id=source["shadow_copy_id"])

    assert plan.shadow_copy_ids == (source["shadow_copy_id"],)
    assert plan.rule == RECORDED_ID
    assert (plan.disk_number, plan.disk_identity) == (2, report["disk"]["identity"])


def test_a_disk_with_several_drives_reverts_each_recorded_shadow_copy(inspected: Any) -> None:
    report, source = inspected
    second = shadow(report, 2, volume_path=SECOND_VOLUME)
    report["partitions"].append({**report["partitions"][0], "volume_path": SECOND_VOLUME})
    report["shadow_copies"] += [second, shadow(report, 3, volume_path=SECOND_VOLUME)]

    plan = plan_revert(report, recorded_id=f"{source['shadow_copy_id']},{second['id']}")

    assert plan.shadow_copy_ids == (source["shadow_copy_id"], second["id"])


def test_one_missing_id_of_several_recorded_refuses_the_whole_revert(inspected: Any) -> None:
    report, source = inspected
    missing = "{6f1e0e7a-1111-4c5d-9e8f-999999999999}"

    with pytest.raises(RevertRefused, match=missing):
        plan_revert(report, recorded_id=f"{source['shadow_copy_id']},{missing}")


def test_the_recorded_shadow_copy_wins_over_newer_and_older_ones(inspected: Any) -> None:
    report, source = inspected
    report["shadow_copies"] += [
        shadow(report, 2, install_date="2026-11-26T00:00:05Z"),
        shadow(report, 3, install_date="2026-11-24T00:00:05Z"),
    ]

    plan = plan_revert(report, recorded_id=source["shadow_copy_id"])

    assert plan.shadow_copy_ids == (source["shadow_copy_id"],)


def test_the_recorded_shadow_copy_is_found_whatever_its_case_and_braces(
    inspected: Any,
) -> None:
    report, source = inspected

    plan = plan_revert(report, recorded_id=source["shadow_copy_id"].strip("{}").upper())

    assert plan.shadow_copy_ids == (source["shadow_copy_id"],)


def test_the_recorded_shadow_copy_wins_over_the_recorded_set(inspected: Any) -> None:
    report, source = inspected
    report["shadow_copies"].append(shadow(report, 2, set_id=source["shadow_set_id"]))

    plan = plan_revert(
        report, recorded_id=source["shadow_copy_id"], recorded_set=source["shadow_set_id"]
    )

    assert (plan.shadow_copy_ids, plan.rule) == ((source["shadow_copy_id"],), RECORDED_ID)


def test_with_only_the_set_recorded_its_shadow_copies_on_the_disk_are_reverted(
    inspected: Any,
) -> None:
    report, source = inspected
    report["partitions"].append({**report["partitions"][0], "volume_path": SECOND_VOLUME})
    in_set = shadow(report, 2, set_id=source["shadow_set_id"], volume_path=SECOND_VOLUME)
    newer_other_set = shadow(report, 3, install_date="2026-11-26T00:00:05Z")
    report["shadow_copies"] += [in_set, newer_other_set]

    plan = plan_revert(report, recorded_set=source["shadow_set_id"])

    assert set(plan.shadow_copy_ids) == {source["shadow_copy_id"], in_set["id"]}
    assert plan.rule == RECORDED_SET


def test_with_nothing_recorded_the_newest_shadow_copy_of_each_volume_is_reverted(
    inspected: Any,
) -> None:
    report, _ = inspected
    report["partitions"].append({**report["partitions"][0], "volume_path": SECOND_VOLUME})
    newest_on_first = shadow(report, 2, install_date="2026-11-26T00:00:05Z")
    older_on_second = shadow(
        report, 3, volume_path=SECOND_VOLUME, install_date="2026-11-20T00:00:05Z"
    )
    newest_on_second = shadow(
        report, 4, volume_path=SECOND_VOLUME, install_date="2026-11-25T12:00:00Z"
    )
    report["shadow_copies"] += [newest_on_first, older_on_second, newest_on_second]

    plan = plan_revert(report)

    assert set(plan.shadow_copy_ids) == {newest_on_first["id"], newest_on_second["id"]}
    assert plan.rule == NEWEST


def test_a_newer_shadow_copy_of_another_volume_is_never_chosen(inspected: Any) -> None:
    report, source = inspected
    elsewhere = shadow(report, 9, volume_path=OTHER_VOLUME, install_date="2026-11-26T00:00:05Z")
    report["shadow_copies"].append(elsewhere)

    plan = plan_revert(report)

    assert plan.shadow_copy_ids == (source["shadow_copy_id"],)


def test_a_recorded_shadow_copy_that_lives_on_another_volume_is_refused(
    inspected: Any,
) -> None:
    report, _ = inspected
    elsewhere = shadow(report, 9, volume_path=OTHER_VOLUME)
    report["shadow_copies"].append(elsewhere)

    with pytest.raises(RevertRefused, match="is not on disk 2"):
        plan_revert(report, recorded_id=elsewhere["id"])


@pytest.mark.parametrize("flag", ["is_system", "is_boot"])
def test_the_helpers_own_system_or_boot_disk_is_never_reverted(inspected: Any, flag: str) -> None:
    report, source = inspected
    report["disk"][flag] = True

    with pytest.raises(RevertRefused, match="helper's own system or boot disk; nothing reverted"):
        plan_revert(report, recorded_id=source["shadow_copy_id"])


def test_a_recorded_shadow_copy_missing_from_the_disk_is_refused(inspected: Any) -> None:
    report, _ = inspected
    missing = "{6f1e0e7a-1111-4c5d-9e8f-00000000dead}"

    with pytest.raises(RevertRefused, match=f"recorded shadow copy {missing} is not on disk 2"):
        plan_revert(report, recorded_id=missing)


def test_a_recorded_set_missing_from_the_disk_is_refused(inspected: Any) -> None:
    report, _ = inspected
    missing = "{0c9b8a7d-2222-4c5d-9e8f-00000000dead}"

    with pytest.raises(RevertRefused, match=f"recorded set {missing} is on disk 2"):
        plan_revert(report, recorded_set=missing)


def test_a_shadow_copy_that_is_not_persistent_is_refused(inspected: Any) -> None:
    report, source = inspected
    report["shadow_copies"][0]["persistent"] = False

    with pytest.raises(RevertRefused, match="not persistent and cannot be reverted"):
        plan_revert(report, recorded_id=source["shadow_copy_id"])


def test_a_disk_with_no_shadow_copy_is_refused(inspected: Any) -> None:
    report, _ = inspected
    report["shadow_copies"] = []

    with pytest.raises(RevertRefused, match="no shadow copy found on disk 2"):
        plan_revert(report)


def test_a_disk_whose_only_shadow_copies_are_on_other_volumes_is_refused(
    inspected: Any,
) -> None:
    report, _ = inspected
    report["shadow_copies"][0]["volume_path"] = OTHER_VOLUME

    with pytest.raises(RevertRefused, match="no shadow copy found on disk 2"):
        plan_revert(report)
