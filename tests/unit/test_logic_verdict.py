"""The verdict volume by volume: what was done, what the check found, what the tags say
(logic/verdict.py)."""

import dataclasses
from typing import Any

import pytest

from vss_restore.errors import VolumeNotReverted
from vss_restore.logic.plan import NEWEST, RECORDED_ID
from vss_restore.logic.verdict import (
    VERIFY_ONLY_RULE,
    VolumeVerdict,
    reason,
    require_every_shadowed_volume_reverted,
    summary,
    volume_verdicts,
)
from vss_restore.tags import MAX_VALUE_LENGTH


@pytest.fixture
def restored(sample: Any) -> dict[str, Any]:
    """The state Record the verdict gets: inspection, plan, Revert and Check reports."""
    event = sample("record_verdict")
    progress = event["progress"]
    return {
        "inspection": progress["inspect"]["report"],
        "plan": event["plan"],
        "revert": progress["revert"]["report"],
        "check": progress["check"]["report"],
    }


def _efi(restored: dict[str, Any]) -> None:
    """A FAT32 partition with no shadow copy on the disk, which the Check does not scan."""
    efi = {**restored["plan"]["volumes"][0], "partition": 1, "file_system": "FAT32"}
    efi.update(drive="", done="not-in-backup", shadow_copy_id="", shadow_copy_date="")
    restored["plan"]["volumes"].insert(0, efi)


def test_each_volume_says_its_drive_what_was_done_and_what_the_scan_found(
    restored: dict[str, Any],
) -> None:
    _efi(restored)

    volumes = volume_verdicts(**restored)

    assert [(v.label, v.done, v.finding, v.passed) for v in volumes] == [
        ("partition 1", "not-in-backup", "not scanned (FAT32)", None),
        ("D:", "reverted-recorded", "NoErrorsFound", True),
    ]
    assert volumes[1].as_dict()["what_was_done"] == "reverted to the recorded shadow copy"


def test_a_finding_belongs_to_its_partition_whatever_its_path_is_now(
    restored: dict[str, Any],
) -> None:
    # Onlining a clone that collides can give its volumes new paths: the number stays.
    restored["check"]["volumes"][0]["volume_path"] = "\\\\?\\Volume{ffffffff-0000-0000-0000-1}\\"
    restored["check"]["volumes"][0].update(
        scanner="Repair-Volume", scan_result="SpotFixNeeded", passed=False
    )

    (volume,) = volume_verdicts(**restored)

    assert (volume.finding, volume.passed) == ("SpotFixNeeded", False)


@pytest.mark.parametrize(
    ("scanner", "result", "finding"),
    [
        ("chkdsk", "ErrorsFoundOrNotChecked", "chkdsk ErrorsFoundOrNotChecked"),
        ("chkdsk", "ScanImpossible", "ScanImpossible"),
        ("Repair-Volume", "FullRepairNeeded", "FullRepairNeeded"),
    ],
)
def test_a_scan_windows_would_not_do_is_told_apart_from_damage_found(
    restored: dict[str, Any], scanner: str, result: str, finding: str
) -> None:
    restored["check"]["volumes"][0].update(scanner=scanner, scan_result=result, passed=False)

    (volume,) = volume_verdicts(**restored)

    assert (volume.finding, volume.passed) == (finding, False)


def test_without_a_check_every_volume_is_not_checked(restored: dict[str, Any]) -> None:
    (volume,) = volume_verdicts(**{**restored, "check": None})

    assert (volume.finding, volume.passed) == ("not checked", None)


def test_a_verify_only_restore_lists_every_volume_as_verify_only(
    restored: dict[str, Any],
) -> None:
    (volume,) = volume_verdicts(restored["inspection"], None, None, restored["check"])

    assert (volume.drive, volume.done, volume.finding) == ("", "verify-only", "NoErrorsFound")


def test_a_planned_volume_the_revert_report_does_not_list_is_not_reverted_and_never_verified(
    restored: dict[str, Any],
) -> None:
    restored["revert"]["reverted"] = []

    volumes = volume_verdicts(**restored)

    assert [v.done for v in volumes] == ["not-reverted"]
    with pytest.raises(VolumeNotReverted, match=r"D: \(shadow copy \{6f1e0e7a"):
        require_every_shadowed_volume_reverted(volumes)


def test_a_reverted_id_matches_whatever_its_case_and_braces(restored: dict[str, Any]) -> None:
    restored["revert"]["reverted"] = [restored["revert"]["reverted"][0].strip("{}").upper()]

    (volume,) = volume_verdicts(**restored)

    assert volume.done == "reverted-recorded"
    require_every_shadowed_volume_reverted([volume])


def test_the_newest_copy_rule_is_called_weaker_in_the_reason() -> None:
    assert reason(NEWEST, [], checked=True) == (
        "reverted to the newest shadow copy on each volume (weaker rule: no ID recorded); "
        "the restored disk passed its check"
    )
    assert reason(VERIFY_ONLY_RULE, [], checked=False) == (
        "consistent already; not checked (CheckAfterRevert is false)"
    )


def test_the_reason_counts_the_volumes_left_as_not_part_of_the_backup(
    restored: dict[str, Any],
) -> None:
    _efi(restored)

    text = reason(RECORDED_ID, volume_verdicts(**restored), checked=True)

    assert text == (
        "reverted to the shadow copies the backup recorded; 1 volume(s) not part of the "
        "backup left as they were; the restored disk passed its check"
    )


def test_the_summary_tag_names_each_volume_in_a_few_words(restored: dict[str, Any]) -> None:
    _efi(restored)

    assert summary(volume_verdicts(**restored)) == (
        "partition 1 not in backup, not scanned (FAT32); D: recorded copy, NoErrorsFound"
    )


def test_the_summary_of_many_volumes_fits_a_tag_and_says_how_many_it_left_out() -> None:
    volume = VolumeVerdict(
        partition=1,
        drive="D",
        file_system="NTFS",
        done="reverted-newest",
        shadow_copy_id="{6f1e0e7a-1111-4c5d-9e8f-000000000001}",
        shadow_copy_date="2026-11-25T00:00:05Z",
        finding="Error: " + "the device is not ready " * 10,
        passed=False,
    )
    volumes = [dataclasses.replace(volume, drive=letter) for letter in "DEFGHIJKLMNOPQRS"]

    text = summary(volumes)

    assert len(text) <= MAX_VALUE_LENGTH
    assert text.startswith("D: newest copy, Error: the device is not ready the device is")
    kept = text.count("newest copy")
    assert text.endswith(f"; +{len(volumes) - kept} more (execution output)")
    assert kept >= 2
