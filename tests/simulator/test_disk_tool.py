"""The simulated helper answers the disk tool as docs/disk-tool.md says Windows will."""

import json
from datetime import UTC, datetime

import pytest

from simulator.disks import DiskContent, ShadowCopy, windows_disk
from simulator.windows import (
    ToolFailure,
    ToolRun,
    ValidationScript,
    WindowsHost,
    serial_matches,
    serial_number,
)
from vss_restore.logic.disk_tool import check_findings, parse_report

NOW = datetime(2026, 11, 25, 0, 0, 5, tzinfo=UTC)
HELPER_C = "vol-0aaaaaaaaaaaaaaa1"
RESTORED = "vol-0a4064b39e5f534a2"
BACKUP_SHADOW = "{6f1e0e7a-1111-4c5d-9e8f-000000000001}"
OLDER_SHADOW = "{6f1e0e7a-1111-4c5d-9e8f-000000000000}"
HELPERS_OWN_SHADOW = "{6f1e0e7a-1111-4c5d-9e8f-0000000000ff}"
GUID = "{5B0C6A1E-3D2F-4E8A-9B7C-1A2B3C4D5E6F}"
HELPER_GUID = "{0A0A0A0A-3D2F-4E8A-9B7C-1A2B3C4D5E6F}"  # the helper's own C:, no clone's


def _restored_content(identity: str = GUID) -> DiskContent:
    """A crash copy of a D: volume whose backup took BACKUP_SHADOW; an older one lingers."""
    content = windows_disk(
        size_gib=30, partition_style="GPT", drive_letters=["D"], system=False, identity=identity
    )
    (data,) = [p for p in content.partitions if p.holds_data]
    data.consistent = False
    data.backup_shadow_id = BACKUP_SHADOW
    set_id = "{0c9b8a7d-2222-4c5d-9e8f-000000000001}"
    content.shadow_copies = [
        ShadowCopy(OLDER_SHADOW, set_id, data.number, NOW),
        ShadowCopy(BACKUP_SHADOW, set_id, data.number, NOW),
    ]
    return content


@pytest.fixture
def contents() -> dict[str, DiskContent]:
    helper_c = windows_disk(
        size_gib=30, partition_style="GPT", drive_letters=["C"], system=True, identity=HELPER_GUID
    )
    helper_c.shadow_copies.append(
        ShadowCopy(HELPERS_OWN_SHADOW, "{0c9b8a7d-2222-4c5d-9e8f-0000000000ff}", 3, NOW)
    )
    return {HELPER_C: helper_c, RESTORED: _restored_content()}


@pytest.fixture
def helper(contents: dict[str, DiskContent]) -> WindowsHost:
    host = WindowsHost("i-0123456789abcdef0", contents.__getitem__)
    host.add_disk(HELPER_C, own=True, system=True)
    host.add_disk(RESTORED)
    return host


def _run(host: WindowsHost, **parameters: str) -> ToolRun:
    run = ToolRun(
        host,
        {
            "DiskNumber": "",
            "ShadowCopyIds": "",
            "DiskIdentity": "",
            "ValidationScript": "",
            **parameters,
        },
    )
    run.start()
    run.finish()
    return run


def _revert(host: WindowsHost, shadow_ids: str, disk: str = "1", identity: str = GUID) -> ToolRun:
    return _run(
        host,
        Action="Revert",
        VolumeId=RESTORED,
        DiskNumber=disk,
        ShadowCopyIds=shadow_ids,
        DiskIdentity=identity,
    )


def test_inspect_reports_the_attached_disk_and_only_its_shadow_copies(helper: WindowsHost) -> None:
    run = _run(helper, Action="Inspect", VolumeId=RESTORED)
    report = parse_report(run.stdout, "Inspect", RESTORED)  # the lead's parser accepts it
    assert run.exit_code == 0
    assert report["disk"]["number"] == 1
    assert report["disk"]["serial_number"] == "vol0a4064b39e5f534a2_00000001."
    assert report["disk"]["identity"] == GUID
    assert report["disk"]["was_offline"] is True
    assert report["disk"]["was_read_only"] is True
    assert report["disk"]["is_system"] is False
    ids = [s["id"] for s in report["shadow_copies"]]
    assert ids == [OLDER_SHADOW, BACKUP_SHADOW]  # never the helper's own
    volume_paths = {p["volume_path"] for p in report["partitions"]}
    assert {s["volume_path"] for s in report["shadow_copies"]} <= volume_paths
    assert all(s["install_date"] == "2026-11-25T00:00:05Z" for s in report["shadow_copies"])
    # Inspect leaves the disk as it found it.
    assert not helper.disks[1].online


def test_the_report_is_the_last_line_and_compact(helper: WindowsHost) -> None:
    stdout = _run(helper, Action="Inspect", VolumeId=RESTORED).stdout
    *transcript, last = stdout.strip().splitlines()
    assert transcript, "the script talks before it reports"
    assert json.loads(last)["schema"] == 2
    assert ", " not in last
    assert ": " not in last


def test_reverting_the_backups_shadow_copy_makes_the_volume_consistent(
    helper: WindowsHost, contents: dict[str, DiskContent]
) -> None:
    run = _run(
        helper,
        Action="Revert",
        VolumeId=RESTORED,
        DiskNumber="1",
        ShadowCopyIds=BACKUP_SHADOW,
        DiskIdentity=GUID,
    )
    report = parse_report(run.stdout, "Revert", RESTORED)
    assert run.exit_code == 0
    assert report["reverted"] == [BACKUP_SHADOW]
    assert report["identity_restored"] == GUID
    assert report["offline"] is True
    assert contents[RESTORED].consistent
    # A revert consumes the shadow copies of that volume.
    assert contents[RESTORED].shadow_copies == []


def test_reverting_an_older_shadow_copy_is_not_the_backups_point_in_time(
    helper: WindowsHost, contents: dict[str, DiskContent]
) -> None:
    run = _revert(helper, OLDER_SHADOW)
    assert run.exit_code == 0
    assert not contents[RESTORED].consistent


def test_windows_errors_come_back_verbatim_with_exit_code_1(helper: WindowsHost) -> None:
    wrong_disk = _revert(helper, BACKUP_SHADOW, disk="0")
    assert wrong_disk.exit_code == 1
    assert "not that of" in parse_report(wrong_disk.stdout, "Revert", RESTORED)["error"]

    missing = _revert(helper, BACKUP_SHADOW, disk="7")
    assert "No MSFT_Disk objects found" in json.loads(missing.stdout.splitlines()[-1])["error"]


def test_a_revert_refuses_before_changing_anything(
    helper: WindowsHost, contents: dict[str, DiskContent]
) -> None:
    before = contents[RESTORED].clone()
    unknown = _revert(helper, f"{BACKUP_SHADOW},{{00000000-0000-4000-8000-000000000000}}")
    without_identity = _run(
        helper, Action="Revert", VolumeId=RESTORED, DiskNumber="1", ShadowCopyIds=BACKUP_SHADOW
    )
    wrong_style = _revert(helper, BACKUP_SHADOW, identity="0x1234ABCD")

    unknown_report = parse_report(unknown.stdout, "Revert", RESTORED)
    assert (
        "{00000000-0000-4000-8000-000000000000} are not on the volumes of disk 1"
        in (unknown_report["error"])
    )
    assert (unknown_report["reverted"], unknown_report["offline"]) == ([], True)
    assert "Revert needs DiskNumber and DiskIdentity" in str(
        parse_report(without_identity.stdout, "Revert", RESTORED)["error"]
    )
    assert "is not MBR like identity 0x1234ABCD" in str(
        parse_report(wrong_style.stdout, "Revert", RESTORED)["error"]
    )
    assert contents[RESTORED] == before
    assert not helper.disks[1].online


def test_a_system_disk_is_never_reverted_or_checked(helper: WindowsHost) -> None:
    helper.disks[0].serial_number = serial_number(RESTORED)  # as if Inspect had been fooled
    helper.disks[1].serial_number = "vol0ffffffffffffffff_00000001."
    revert = _revert(helper, HELPERS_OWN_SHADOW, disk="0")
    check = _check(helper, disk="0")
    assert "system or boot disk; nothing done" in str(
        parse_report(revert.stdout, "Revert", RESTORED)["error"]
    )
    assert "system or boot disk; nothing done" in str(
        parse_report(check.stdout, "Check", RESTORED)["error"]
    )
    assert helper.disks[0].online


def test_a_shadow_copy_of_the_helpers_own_volume_is_never_reverted(
    helper: WindowsHost, contents: dict[str, DiskContent]
) -> None:
    run = _revert(helper, HELPERS_OWN_SHADOW)
    assert run.exit_code == 1
    assert contents[HELPER_C].shadow(HELPERS_OWN_SHADOW) is not None


def test_inspect_finds_no_disk_for_a_volume_that_is_not_attached(helper: WindowsHost) -> None:
    run = _run(helper, Action="Inspect", VolumeId="vol-0bbbbbbbbbbbbbbb2")
    report = json.loads(run.stdout.splitlines()[-1])
    assert run.exit_code == 1
    assert report["disk"] is None
    assert report["ok"] is False


def _clone_of_helpers_d(contents: dict[str, DiskContent]) -> tuple[WindowsHost, DiskContent]:
    """The helper restores a snapshot of its own D: volume: the clone has D:'s GUID."""
    live_d = _restored_content()
    contents["vol-0cccccccccccccccc3"] = live_d
    host = WindowsHost("i-0123456789abcdef0", contents.__getitem__)
    host.add_disk(HELPER_C, own=True, system=True)
    host.add_disk("vol-0cccccccccccccccc3", own=True)
    host.add_disk(RESTORED)
    return host, live_d


def test_a_colliding_clone_keeps_a_new_identity_while_attached_and_gets_its_own_back_last(
    contents: dict[str, DiskContent],
) -> None:
    host, live_d = _clone_of_helpers_d(contents)

    inspect = parse_report(
        _run(host, Action="Inspect", VolumeId=RESTORED).stdout, "Inspect", RESTORED
    )
    assert inspect["disk"]["identity"] == GUID  # captured before onlining rewrote it
    assert host.rewritten == [RESTORED]  # read-only cleared while offline, then onlined
    renamed = contents[RESTORED].identity
    assert renamed != GUID  # left so: a reboot now cannot start from the clone
    host.reboot("between actions")
    assert host.boot_hazards == []
    disk = str(inspect["disk"]["number"])
    revert = _run(
        host,
        Action="Revert",
        VolumeId=RESTORED,
        DiskNumber=disk,
        ShadowCopyIds=BACKUP_SHADOW,
        DiskIdentity=GUID,
        LastAction="false",  # a Check follows
    )
    assert parse_report(revert.stdout, "Revert", RESTORED)["identity_restored"] == renamed
    check = _check(host, disk=disk)
    assert parse_report(check.stdout, "Check", RESTORED)["identity_restored"] == GUID
    # Only the Inspect's onlining clashed; the last action wrote GUID back while offline.
    assert host.rewritten == [RESTORED]
    assert (contents[RESTORED].identity, host.disks[2].online) == (GUID, False)
    assert (RESTORED, "identity written offline") in host.changes
    assert live_d.identity == GUID  # the helper's D: never changed
    assert {volume for volume, _ in host.changes} == {RESTORED}


def test_once_the_identity_is_back_the_clone_collides_again_so_it_must_be_detached_at_once(
    contents: dict[str, DiskContent],
) -> None:
    # Why only the last action puts it back: from then on the offline clone carries the live
    # D:'s GUID again, and only the detach right after ends that.
    host, _ = _clone_of_helpers_d(contents)
    _run(host, Action="Inspect", VolumeId=RESTORED)
    assert host.colliding(host.disks[2], contents[RESTORED].identity) == []
    _revert(host, BACKUP_SHADOW, disk="2")  # LastAction empty: the last action
    assert contents[RESTORED].identity == GUID
    assert host.colliding(host.disks[2], GUID) == [1]
    assert not host.disks[2].online


def test_windows_refuses_to_online_a_read_only_clone_or_give_an_online_disk_a_used_identity(
    contents: dict[str, DiskContent],
) -> None:
    host, _ = _clone_of_helpers_d(contents)
    clone = host.disks[2]
    with pytest.raises(ToolFailure, match="read-only: Windows cannot write it a new one"):
        host.bring_online(clone)
    with pytest.raises(ToolFailure, match="41003"):
        host.set_identity(clone, "{11111111-1111-1111-1111-111111111111}")
    clone.read_only = False
    host.bring_online(clone)
    with pytest.raises(ToolFailure, match="an online disk has it"):
        host.set_identity(clone, GUID)
    with pytest.raises(ToolFailure, match="must be offline and writable"):
        host.write_identity_raw(clone, GUID)


def test_a_clone_of_the_helpers_boot_disk_is_never_attached_with_its_identity_until_the_end(
    contents: dict[str, DiskContent],
) -> None:
    # A helper from the same AMI as the backed-up instance: the restored C: has its boot GUID.
    contents[RESTORED].identity = HELPER_GUID
    host = WindowsHost("i-0123456789abcdef0", contents.__getitem__)
    host.add_disk(HELPER_C, own=True, system=True)
    host.add_disk(RESTORED)
    inspect = parse_report(
        _run(host, Action="Inspect", VolumeId=RESTORED).stdout, "Inspect", RESTORED
    )
    host.reboot("after the Inspect")
    revert = _run(
        host,
        Action="Revert",
        VolumeId=RESTORED,
        DiskNumber="1",
        ShadowCopyIds=BACKUP_SHADOW,
        DiskIdentity=inspect["disk"]["identity"],
        LastAction="true",
    )
    assert parse_report(revert.stdout, "Revert", RESTORED)["identity_restored"] == HELPER_GUID
    assert host.boot_hazards == []  # the reboot came while the clone had another identity
    assert contents[HELPER_C].identity == HELPER_GUID
    host.reboot("before the detach")  # the seconds between the last action and the detach
    assert len(host.boot_hazards) == 1


def test_serial_numbers_match_on_the_whole_volume_id() -> None:
    assert serial_number("vol-0a4064b39e5f534a2") == "vol0a4064b39e5f534a2_00000001."
    assert serial_matches("vol0a4064b39e5f534a2_00000001.", "vol-0a4064b39e5f534a2")
    assert serial_matches("vol0a4064b39e5f534a2", "vol-0a4064b39e5f534a2")
    assert not serial_matches("vol0a4064b39e5f534a2_00000001.", "vol-0a4064b39e5f534")


def _check(host: WindowsHost, disk: str = "1", script: str = "") -> ToolRun:
    return _run(
        host,
        Action="Check",
        VolumeId=RESTORED,
        DiskNumber=disk,
        DiskIdentity=GUID,
        ValidationScript=script,
    )


def test_a_check_of_a_volume_never_reverted_finds_half_done_writes(helper: WindowsHost) -> None:
    run = _check(helper)
    report = parse_report(run.stdout, "Check", RESTORED)
    assert run.exit_code == 0  # the check ran; what it found is in `passed`
    assert (report["ok"], report["passed"]) == (True, False)
    (volume,) = report["volumes"]
    # Windows refuses Repair-Volume -Scan on the read-only disk: chkdsk, read-only, finds it.
    assert (volume["file_system"], volume["scanner"], volume["scan_result"], volume["passed"]) == (
        "NTFS",
        "chkdsk",
        "ErrorsFoundOrNotChecked",
        False,
    )
    assert "43006" in volume["scan_error"]
    assert report["validation"] is None
    assert (report["identity_restored"], report["offline"]) == (GUID, True)
    assert helper.disks[1].read_only


def test_a_check_after_the_right_revert_finds_no_errors_and_changes_nothing(
    helper: WindowsHost, contents: dict[str, DiskContent]
) -> None:
    _revert(helper, BACKUP_SHADOW)
    reverted = contents[RESTORED].clone()
    report = parse_report(_check(helper).stdout, "Check", RESTORED)
    assert report["passed"] is True
    assert [v["scan_result"] for v in report["volumes"]] == ["NoErrorsFound"]
    assert contents[RESTORED] == reverted
    # Offline again, read-only as the revert left it (cleared).
    assert (helper.disks[1].online, helper.disks[1].read_only) == (False, False)


def test_a_forced_scan_result_hits_the_first_volume(helper: WindowsHost) -> None:
    helper.read_only_scan = "allowed"
    _revert(helper, BACKUP_SHADOW)
    run = ToolRun(
        helper,
        {"Action": "Check", "VolumeId": RESTORED, "DiskNumber": "1", "DiskIdentity": GUID},
        forced_scan_result="FullRepairNeeded",
    )
    assert run.start() is True  # the scan is the long part
    report = parse_report(run.stdout, "Check", RESTORED)
    assert [v["scan_result"] for v in report["volumes"]] == ["FullRepairNeeded"]
    assert report["passed"] is False


def test_the_validation_script_runs_when_it_exists_and_fails_the_check_when_missing(
    helper: WindowsHost, contents: dict[str, DiskContent]
) -> None:
    _revert(helper, BACKUP_SHADOW)
    helper.validation_scripts = {
        "C:\\vss-restore\\validate.ps1": ValidationScript(3, "line 1\n\nSQL: page checksum error\n")
    }
    found = parse_report(
        _check(helper, script="c:\\VSS-restore\\validate.ps1").stdout, "Check", RESTORED
    )
    reverted = contents[RESTORED].clone()
    missing_run = _check(helper, script="C:\\vss-restore\\missing.ps1")
    missing = parse_report(missing_run.stdout, "Check", RESTORED)

    assert found["validation"] == {
        "script": "c:\\VSS-restore\\validate.ps1",
        "exit_code": 3,
        "passed": False,
        "output": "line 1\nSQL: page checksum error",
    }
    assert (found["ok"], found["passed"]) == (True, False)
    # A script that is not there is refused before the disk is touched: nothing scanned.
    assert missing_run.exit_code == 1
    assert missing["error"] == (
        "validation script C:\\vss-restore\\missing.ps1 not found on this instance; nothing done"
    )
    assert (missing["volumes"], missing["passed"], missing["offline"]) == ([], False, True)
    assert contents[RESTORED] == reverted


# -- issue #14: duplicate shadow copy IDs, disk numbers reused ------------------------------


def test_a_shadow_copy_id_on_two_attached_disks_is_never_reverted(
    helper: WindowsHost, contents: dict[str, DiskContent]
) -> None:
    # The disk the restored volume was cloned from is attached too, online, and still holds
    # the backup's shadow copy: once the clone is online, Win32_ShadowCopy lists it twice.
    original = "vol-0bbbbbbbbbbbbbbb2"
    contents[original] = _restored_content()
    helper.add_disk(original, own=True)
    before = {volume: content.clone() for volume, content in contents.items()}

    report = parse_report(_revert(helper, BACKUP_SHADOW).stdout, "Revert", RESTORED)

    assert report["ok"] is False
    assert f"shadow copy {BACKUP_SHADOW} exists 2 times on this instance" in report["error"]
    assert "nothing reverted" in report["error"]
    assert report["reverted"] == []
    assert contents == before  # no shadow copy reverted, on either disk
    assert {volume for volume, _ in helper.changes} == {RESTORED}


def test_without_the_uniqueness_check_diskshadow_would_revert_the_other_disks_copy(
    helper: WindowsHost, contents: dict[str, DiskContent]
) -> None:
    # Why the check: given only the ID, VSS reverts the first copy it finds.
    original = "vol-0bbbbbbbbbbbbbbb2"
    contents[original] = _restored_content()
    other = helper.add_disk(original, own=True)
    other.number, helper.disks = 0, {0: other, 1: helper.disks[1], 2: helper.disks[0]}
    run = ToolRun(
        helper,
        {
            "Action": "Revert",
            "VolumeId": RESTORED,
            "DiskNumber": "1",
            "ShadowCopyIds": BACKUP_SHADOW,
            "DiskIdentity": GUID,
        },
    )
    run._disk = helper.disks[1]
    run._unique_id, run._serial = helper.disks[1].unique_id, helper.disks[1].serial_number
    run._end_revert()
    assert contents[original].partitions[-1].reverted_to == BACKUP_SHADOW
    assert contents[RESTORED].partitions[-1].reverted_to == ""


def test_a_disk_number_reused_after_a_forced_detach_is_never_changed(
    helper: WindowsHost, contents: dict[str, DiskContent]
) -> None:
    # A Check is under way on disk 1 when the cleanup force-detaches the volume; the next
    # restore's volume arrives and Windows gives it number 1.
    check = ToolRun(
        helper,
        {
            "Action": "Check",
            "VolumeId": RESTORED,
            "DiskNumber": "1",
            "ShadowCopyIds": "",
            "DiskIdentity": GUID,
            "ValidationScript": "",
        },
    )
    assert check.start()
    assert helper.disks[1].online
    helper.remove_disk(RESTORED)
    following = "vol-0ccccccccccccccc3"
    contents[following] = _restored_content(identity="{0D15EA5E-0000-4000-8000-00000000000F}")
    newcomer = helper.add_disk(following)
    assert newcomer.number == 1
    changes_before = list(helper.changes)
    state = (newcomer.online, newcomer.read_only, contents[following].identity)

    report = parse_report(check.stdout, "Check", RESTORED)

    assert report["ok"] is False
    assert "is no longer attached; nothing changed" in report["error"]
    assert helper.changes == changes_before  # the old script changed nothing after the detach
    assert {volume for volume, _ in helper.changes} == {RESTORED}
    assert (newcomer.online, newcomer.read_only, contents[following].identity) == state


# -- issue #14: read-only scan, validation script, asynchronous revert, report size ----------


def test_where_windows_allows_a_read_only_scan_repair_volume_gives_its_finding(
    helper: WindowsHost,
) -> None:
    helper.read_only_scan = "allowed"
    (volume,) = parse_report(_check(helper).stdout, "Check", RESTORED)["volumes"]
    assert (volume["scanner"], volume["scan_result"], volume["scan_error"]) == (
        "Repair-Volume",
        "SpotFixNeeded",
        "",
    )


def test_a_volume_no_scanner_can_read_is_scan_impossible_not_damage(helper: WindowsHost) -> None:
    _revert(helper, BACKUP_SHADOW)
    run = ToolRun(
        helper,
        {"Action": "Check", "VolumeId": RESTORED, "DiskNumber": "1", "DiskIdentity": GUID},
        forced_scan_result="ScanImpossible",
    )
    assert run.start()
    report = parse_report(run.stdout, "Check", RESTORED)
    (volume,) = report["volumes"]
    assert (volume["scan_result"], volume["passed"], report["passed"]) == (
        "ScanImpossible",
        False,
        False,
    )
    assert "could not be scanned, no finding either way" in check_findings(report)


@pytest.mark.parametrize(
    ("path", "writable_by", "who"),
    [
        (
            "C:\\Users\\Public\\validate.ps1",
            (),
            "c:\\users\\public may be written by BUILTIN\\Users",
        ),
        ("C:\\Windows\\Temp\\v\\validate.ps1", (), "c:\\windows\\temp may be written by"),
        ("C:\\vss-restore\\validate.ps1", ("Everyone",), "validate.ps1 may be written by Everyone"),
    ],
)
def test_a_validation_script_non_administrators_could_change_is_refused_before_the_disk_is_touched(
    helper: WindowsHost,
    contents: dict[str, DiskContent],
    path: str,
    writable_by: tuple[str, ...],
    who: str,
) -> None:
    helper.validation_scripts = {path: ValidationScript(0, "ok", writable_by)}
    before = contents[RESTORED].clone()
    run = _check(helper, script=path)
    report = parse_report(run.stdout, "Check", RESTORED)
    assert run.exit_code == 1
    assert "could be changed by non-administrators" in report["error"]
    assert who in report["error"]
    assert "refused, nothing done" in report["error"]
    assert (report["volumes"], report["passed"]) == ([], False)
    assert helper.changes == []  # the disk was never touched
    assert contents[RESTORED] == before


def test_a_validation_script_exiting_3010_is_a_failed_check_and_no_reboot(
    helper: WindowsHost,
) -> None:
    _revert(helper, BACKUP_SHADOW)
    helper.validation_scripts = {"C:\\vss-restore\\validate.ps1": ValidationScript(3010, "")}
    run = _check(helper, script="C:\\vss-restore\\validate.ps1")
    report = parse_report(run.stdout, "Check", RESTORED)
    assert run.exit_code == 0  # a child powershell.exe's exit code is data, never the tool's
    assert report["validation"]["exit_code"] == 3010
    assert (report["ok"], report["passed"]) == (True, False)
    assert helper.reboots == []


def test_an_asynchronous_revert_is_waited_for_before_the_disk_is_put_back(
    helper: WindowsHost, contents: dict[str, DiskContent]
) -> None:
    run = ToolRun(
        helper,
        {
            "Action": "Revert",
            "VolumeId": RESTORED,
            "DiskNumber": "1",
            "ShadowCopyIds": BACKUP_SHADOW,
            "DiskIdentity": GUID,
        },
        revert_lingers=42,
    )
    assert run.start()
    assert run.revert_wait_seconds() == 45  # polled every 5 s until VSS lists none
    report = parse_report(run.stdout, "Revert", RESTORED)
    assert (report["ok"], report["offline"]) == (True, True)
    assert "VSS lists no revert on the volumes of disk 1 (45 s" in run.stdout
    assert contents[RESTORED].consistent


def test_a_revert_vss_still_runs_after_an_hour_fails_and_leaves_the_disk_alone(
    helper: WindowsHost,
) -> None:
    run = ToolRun(
        helper,
        {
            "Action": "Revert",
            "VolumeId": RESTORED,
            "DiskNumber": "1",
            "ShadowCopyIds": BACKUP_SHADOW,
            "DiskIdentity": GUID,
        },
        revert_lingers=4000,
    )
    assert run.start()
    assert run.revert_wait_seconds() == 3600  # bounded
    changes = len(helper.changes)
    report = parse_report(run.stdout, "Revert", RESTORED)
    assert report["ok"] is False
    assert "still lists a revert" in report["error"]
    # Reverted, then neither put back nor taken offline under a running revert.
    assert helper.changes[changes:] == [(RESTORED, f"reverted {BACKUP_SHADOW}")]
    assert helper.disks[1].online


def _crowd(contents: dict[str, DiskContent], count: int, *, one_set: bool) -> None:
    """`count` shadow copies on the restored D:, in one set or each in a set of its own."""
    (data,) = [p for p in contents[RESTORED].partitions if p.holds_data]
    contents[RESTORED].shadow_copies = [
        ShadowCopy(
            f"{{6f1e0e7a-2222-4c5d-9e8f-{n:012x}}}",
            f"{{0c9b8a7d-2222-4c5d-9e8f-{0 if one_set else n:012x}}}",
            data.number,
            NOW,
            client_accessible=True,
        )
        for n in range(count)
    ]


# Measured with this simulated helper's transcript (issue #14, finding 8): 93 shadow copies fit
# in the report before it was compact; now 169 each in its own set, 244 in one set.
@pytest.mark.parametrize(("count", "one_set"), [(165, False), (240, True)])
def test_a_report_lists_many_shadow_copies_within_what_ssm_keeps(
    helper: WindowsHost, contents: dict[str, DiskContent], count: int, one_set: bool
) -> None:
    _crowd(contents, count, one_set=one_set)
    run = _run(helper, Action="Inspect", VolumeId=RESTORED)
    assert len(run.stdout) <= 24_000
    report = parse_report(run.stdout, "Inspect", RESTORED)
    assert report["ok"] is True
    assert [s["id"] for s in report["shadow_copies"]] == [
        s.id for s in contents[RESTORED].shadow_copies
    ]
    assert {s["client_accessible"] for s in report["shadow_copies"]} == {True}


@pytest.mark.parametrize(("count", "one_set"), [(175, False), (250, True)])
def test_a_report_that_would_not_fit_in_ssms_stdout_is_a_clear_failure(
    helper: WindowsHost, contents: dict[str, DiskContent], count: int, one_set: bool
) -> None:
    _crowd(contents, count, one_set=one_set)
    run = _run(helper, Action="Inspect", VolumeId=RESTORED)
    assert len(run.stdout) < 24_000
    report = parse_report(run.stdout, "Inspect", RESTORED)
    assert report["ok"] is False
    assert "would not fit in the 24,000 characters of stdout SSM keeps" in report["error"]
    partitions = len(contents[RESTORED].partitions)
    assert f"{count + partitions} listed items" in report["error"]
    assert (report["sets"], report["copies"], report["partitions"]) == ([], [], [])
    assert (helper.disks[1].online, contents[RESTORED].identity) == (False, GUID)


def test_a_reboot_with_a_clone_of_the_boot_disk_attached_is_recorded_as_a_hazard(
    contents: dict[str, DiskContent],
) -> None:
    contents["vol-0ddddddddddddddd4"] = contents[HELPER_C].clone()
    host = WindowsHost("i-0123456789abcdef0", contents.__getitem__)
    host.add_disk(HELPER_C, own=True, system=True)
    host.add_disk("vol-0ddddddddddddddd4")
    host.reboot("test")
    assert host.reboots == ["test"]
    (hazard,) = host.boot_hazards
    assert "disk 1 (vol-0ddddddddddddddd4) carries the boot disk's identity" in hazard
