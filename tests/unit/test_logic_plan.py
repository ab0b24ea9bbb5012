"""Exactly which shadow copies are reverted on the attached disk, and why (logic/plan.py)."""

from typing import Any

import pytest

from vss_restore.errors import RevertRefused, VolumeNotReverted
from vss_restore.logic.plan import (
    NEWEST,
    NOT_IN_BACKUP,
    RECORDED_ID,
    RECORDED_SET,
    REVERTED_NEWEST,
    REVERTED_RECORDED,
    plan_revert,
)

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


# --- each volume of the disk: which drive, what is done to it -----------------------------


def _volume(report: dict[str, Any], number: int, file_system: str = "NTFS") -> str:
    """Another volume on the inspected disk, as partition `number`; its path."""
    path = f"\\\\?\\Volume{{a1b2c3d4-0000-0000-0000-{number:012d}}}\\"
    report["partitions"].append(
        {
            **report["partitions"][0],
            "number": number,
            "volume_path": path,
            "file_system": file_system,
        }
    )
    return path


def _done(plan: Any) -> list[tuple[int, str, str]]:
    return [(v.partition, v.drive, v.done) for v in plan.volumes]


def test_recorded_ids_tie_each_drive_to_its_volume_in_the_order_recorded(inspected: Any) -> None:
    report, source = inspected
    second = shadow(report, 2, volume_path=_volume(report, 3))
    report["shadow_copies"].append(second)

    # E: is recorded first: the backup writes letters and IDs in the same order.
    plan = plan_revert(
        report,
        recorded_id=f"{second['id']},{source['shadow_copy_id']}",
        drive_letters="E,D",
    )

    assert _done(plan) == [(2, "D", REVERTED_RECORDED), (3, "E", REVERTED_RECORDED)]


def test_a_volume_the_recorded_ids_do_not_name_is_not_part_of_the_backup(inspected: Any) -> None:
    report, source = inspected
    _volume(report, 1)  # System Reserved: NTFS, no drive letter, never shadowed

    plan = plan_revert(report, recorded_id=source["shadow_copy_id"], drive_letters="D")

    assert _done(plan) == [(1, "", NOT_IN_BACKUP), (2, "D", REVERTED_RECORDED)]
    assert plan.shadow_copy_ids == (source["shadow_copy_id"],)


def test_as_many_recorded_ids_as_drive_letters_or_the_plan_refuses(inspected: Any) -> None:
    report, source = inspected

    with pytest.raises(RevertRefused, match=r"2 drive letters \(D, E\) and 1 shadow copy IDs"):
        plan_revert(report, recorded_id=source["shadow_copy_id"], drive_letters="D,E")


def test_newest_rule_fails_when_a_shadowed_drive_has_no_shadow_copy_on_the_disk(
    inspected: Any,
) -> None:
    report, _ = inspected
    _volume(report, 3)  # E:, whose shadow copy is gone

    with pytest.raises(
        VolumeNotReverted,
        match=r"shadowed 2 drives \(D:, E:\) but only 1 volume\(s\) of disk 2 hold a shadow "
        r"copy to revert; not reverted, left crash-consistent: partition 3 \(NTFS\)",
    ):
        plan_revert(report, drive_letters="D,E")


def test_newest_rule_reports_a_volume_beyond_the_shadowed_drives_as_not_in_the_backup(
    inspected: Any,
) -> None:
    report, source = inspected
    _volume(report, 3)
    _volume(report, 1, file_system="FAT32")

    plan = plan_revert(report, drive_letters="D")

    assert plan.rule == NEWEST
    assert _done(plan) == [
        (1, "", NOT_IN_BACKUP),
        (2, "D", REVERTED_NEWEST),
        (3, "", NOT_IN_BACKUP),
    ]
    assert plan.shadow_copy_ids == (source["shadow_copy_id"],)


def test_without_recorded_drive_letters_an_unshadowed_ntfs_volume_fails_the_plan(
    inspected: Any,
) -> None:
    report, _ = inspected
    _volume(report, 3)

    with pytest.raises(VolumeNotReverted, match="recorded no drive letters"):
        plan_revert(report)


def test_without_recorded_drive_letters_a_volume_vss_cannot_shadow_is_not_in_the_backup(
    inspected: Any,
) -> None:
    report, _ = inspected
    _volume(report, 1, file_system="FAT32")  # the EFI system partition

    plan = plan_revert(report)

    assert _done(plan) == [(1, "", NOT_IN_BACKUP), (2, "", REVERTED_NEWEST)]


def test_newest_rule_refuses_when_more_volumes_hold_shadow_copies_than_drives_were_shadowed(
    inspected: Any,
) -> None:
    report, _ = inspected
    report["shadow_copies"].append(shadow(report, 2, volume_path=_volume(report, 3)))

    with pytest.raises(RevertRefused, match="2 volumes of disk 2 hold shadow copies, but the"):
        plan_revert(report, drive_letters="D")


def test_recorded_set_fails_when_a_shadowed_drive_has_no_copy_of_the_set(inspected: Any) -> None:
    report, source = inspected
    path = _volume(report, 3)
    report["shadow_copies"].append(shadow(report, 2, volume_path=path))  # another set's

    with pytest.raises(VolumeNotReverted, match=r"partition 3 \(NTFS\)"):
        plan_revert(report, recorded_set=source["shadow_set_id"], drive_letters="D,E")


def test_several_drives_without_ids_are_not_tied_to_volumes(inspected: Any) -> None:
    report, _ = inspected
    report["shadow_copies"].append(shadow(report, 2, volume_path=_volume(report, 3)))

    plan = plan_revert(report, drive_letters="D,E")

    assert _done(plan) == [(2, "", REVERTED_NEWEST), (3, "", REVERTED_NEWEST)]
