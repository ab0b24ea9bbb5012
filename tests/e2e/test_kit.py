"""The e2e kit's own steps against the simulator standing in for the account (tests/e2e/twin.py)."""

import time

from e2e.kit import differences, known_files, sha256
from tests.e2e.twin import simulated_kit


def test_the_kit_proves_the_consistent_snapshot_holds_the_shadow_copy_time_files() -> None:
    said: list[str] = []
    started = time.monotonic()
    with simulated_kit("twin1", said.append) as (kit, _):
        outcome = kit.run()

    assert outcome.ok, (outcome.failure, outcome.teardown_problems, outcome.left, said)
    proven = "\n".join(outcome.proven)
    assert "holds exactly the 4 files written before it" in proven
    assert "holds exactly the shadow-copy-time files (4, same names, same SHA-256)" in proven
    # The source snapshot really is crash-consistent: the late writes are in it.
    assert "changed.txt: sha256" in proven
    assert "after-1.txt: not expected" in proven
    # Both drives of the backup were restored, and their snapshots are gone again.
    assert len(kit.backup_snapshots) == 2
    assert len(kit.consistent_snapshots) == 2
    assert said[-1] == "nothing of this run is left (instances, volumes, snapshots, stacks)"
    assert time.monotonic() - started < 60


def test_differences_name_each_file_missing_extra_or_changed() -> None:
    before, after = known_files("r")
    expected = {name: sha256(data) for name, data in before.items()}
    crash = {**expected, **{name: sha256(data) for name, data in after.items()}}
    assert differences(expected, crash) == [
        "after-1.txt: not expected",
        f"changed.txt: sha256 {crash['changed.txt'][:12]}… instead of "
        f"{expected['changed.txt'][:12]}…",
    ]
    assert differences(expected, {}) == [f"{name}: missing" for name in sorted(expected)]
    assert differences(expected, dict(expected)) == []


def test_a_failed_restore_fails_the_kit_and_still_leaves_nothing() -> None:
    refused = "VSS_E_VOLUME_IN_USE: the shadow copy's volume is in use"
    said: list[str] = []
    both_reverts = {"windows": "Revert", "error": refused, "times": 2}
    with simulated_kit("twin2", said.append, [both_reverts]) as (kit, _):
        outcome = kit.run()

    assert not outcome.ok
    assert ": verdict failed: " in outcome.failure
    assert len(outcome.proven) == 1  # the shadow copy, nothing after the verdict
    assert "VSS_E_VOLUME_IN_USE" in outcome.failure
    assert outcome.teardown_problems == []
    assert outcome.left == []
    assert said[-1] == "nothing of this run is left (instances, volumes, snapshots, stacks)"


def test_a_snapshot_without_late_writes_is_inconclusive_not_a_pass() -> None:
    """If the late writes miss the EBS snapshot, the consistent snapshot proves nothing."""
    with simulated_kit("twin3", lambda _: None) as (kit, _):
        windows = kit.windows
        original = windows.start_late_writer
        windows.start_late_writer = lambda i, d, files: original(i, d, {})  # type: ignore[method-assign]
        outcome = kit.run()

    assert outcome.failure.startswith("inconclusive: the EBS snapshot ")
    assert outcome.left == []
