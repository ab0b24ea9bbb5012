"""The simulated helper answers the disk tool as docs/disk-tool.md says Windows will."""

import json
from datetime import UTC, datetime

import pytest

from simulator.disks import DiskContent, ShadowCopy, windows_disk
from simulator.windows import ToolRun, WindowsHost, serial_matches, serial_number
from vss_restore.logic.disk_tool import parse_report

NOW = datetime(2026, 11, 25, 0, 0, 5, tzinfo=UTC)
HELPER_C = "vol-0aaaaaaaaaaaaaaa1"
RESTORED = "vol-0a4064b39e5f534a2"
BACKUP_SHADOW = "{6f1e0e7a-1111-4c5d-9e8f-000000000001}"
OLDER_SHADOW = "{6f1e0e7a-1111-4c5d-9e8f-000000000000}"
HELPERS_OWN_SHADOW = "{6f1e0e7a-1111-4c5d-9e8f-0000000000ff}"
GUID = "{5B0C6A1E-3D2F-4E8A-9B7C-1A2B3C4D5E6F}"


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
        size_gib=30, partition_style="GPT", drive_letters=["C"], system=True, identity=GUID
    )
    helper_c.shadow_copies.append(ShadowCopy(HELPERS_OWN_SHADOW, "{0}", 3, NOW))
    return {HELPER_C: helper_c, RESTORED: _restored_content()}


@pytest.fixture
def helper(contents: dict[str, DiskContent]) -> WindowsHost:
    host = WindowsHost("i-0123456789abcdef0", contents.__getitem__)
    host.add_disk(HELPER_C, own=True, system=True)
    host.add_disk(RESTORED)
    return host


def _run(host: WindowsHost, **parameters: str) -> ToolRun:
    run = ToolRun(host, {"DiskNumber": "", "ShadowCopyIds": "", "DiskIdentity": "", **parameters})
    run.start()
    run.finish()
    return run


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
    assert json.loads(last)["schema"] == 1
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
    run = _run(
        helper, Action="Revert", VolumeId=RESTORED, DiskNumber="1", ShadowCopyIds=OLDER_SHADOW
    )
    assert run.exit_code == 0
    assert not contents[RESTORED].consistent


def test_windows_errors_come_back_verbatim_with_exit_code_1(helper: WindowsHost) -> None:
    unknown = _run(
        helper,
        Action="Revert",
        VolumeId=RESTORED,
        DiskNumber="1",
        ShadowCopyIds="{00000000-0000-0000-0000-000000000000}",
    )
    assert unknown.exit_code == 1
    assert "VSS_E_OBJECT_NOT_FOUND" in parse_report(unknown.stdout, "Revert", RESTORED)["error"]

    wrong_disk = _run(
        helper, Action="Revert", VolumeId=RESTORED, DiskNumber="0", ShadowCopyIds=BACKUP_SHADOW
    )
    assert "refusing" in parse_report(wrong_disk.stdout, "Revert", RESTORED)["error"]

    missing = _run(helper, Action="Revert", VolumeId=RESTORED, DiskNumber="7")
    assert "No MSFT_Disk objects found" in json.loads(missing.stdout.splitlines()[-1])["error"]


def test_a_shadow_copy_of_the_helpers_own_volume_is_never_reverted(
    helper: WindowsHost, contents: dict[str, DiskContent]
) -> None:
    run = _run(
        helper, Action="Revert", VolumeId=RESTORED, DiskNumber="1", ShadowCopyIds=HELPERS_OWN_SHADOW
    )
    assert run.exit_code == 1
    assert contents[HELPER_C].shadow(HELPERS_OWN_SHADOW) is not None


def test_inspect_finds_no_disk_for_a_volume_that_is_not_attached(helper: WindowsHost) -> None:
    run = _run(helper, Action="Inspect", VolumeId="vol-0bbbbbbbbbbbbbbb2")
    report = json.loads(run.stdout.splitlines()[-1])
    assert run.exit_code == 1
    assert report["disk"] is None
    assert report["ok"] is False


def test_a_clone_of_an_online_disk_gets_a_new_identity_until_revert_puts_it_back(
    contents: dict[str, DiskContent],
) -> None:
    # The helper restores a snapshot of its own D: volume: the clone has D:'s GUID.
    live_d = _restored_content()
    contents["vol-0cccccccccccccccc3"] = live_d
    host = WindowsHost("i-0123456789abcdef0", contents.__getitem__)
    host.add_disk(HELPER_C, own=True, system=True)
    host.add_disk("vol-0cccccccccccccccc3", own=True)
    contents[HELPER_C].identity = "{11111111-1111-1111-1111-111111111111}"
    host.add_disk(RESTORED)

    inspect = parse_report(
        _run(host, Action="Inspect", VolumeId=RESTORED).stdout, "Inspect", RESTORED
    )
    assert inspect["disk"]["identity"] == GUID  # captured before onlining rewrote it
    _run(
        host,
        Action="Revert",
        VolumeId=RESTORED,
        DiskNumber=str(inspect["disk"]["number"]),
        ShadowCopyIds=BACKUP_SHADOW,
    )
    assert contents[RESTORED].identity != GUID  # without DiskIdentity, the rewrite stays
    _run(
        host,
        Action="Revert",
        VolumeId=RESTORED,
        DiskNumber=str(inspect["disk"]["number"]),
        DiskIdentity=GUID,
    )
    assert contents[RESTORED].identity == GUID


def test_serial_numbers_match_on_the_whole_volume_id() -> None:
    assert serial_number("vol-0a4064b39e5f534a2") == "vol0a4064b39e5f534a2_00000001."
    assert serial_matches("vol0a4064b39e5f534a2_00000001.", "vol-0a4064b39e5f534a2")
    assert serial_matches("vol0a4064b39e5f534a2", "vol-0a4064b39e5f534a2")
    assert not serial_matches("vol0a4064b39e5f534a2_00000001.", "vol-0a4064b39e5f534")
