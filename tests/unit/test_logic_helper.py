"""Choosing the helper (logic/helper.py): who may be it, who can, and which of several."""

from typing import Any

import pytest

from vss_restore import tags
from vss_restore.errors import HelperNotUsable
from vss_restore.logic.helper import (
    Helper,
    Source,
    helper_candidates,
    pick_helper,
    problems,
    usable_helpers,
)
from vss_restore.settings import Settings

SOURCE = "i-0000000000000aaaa"  # the backed-up instance (the snapshot's tag)
ATTACHED = "i-0000000000000bbbb"  # the instance the source volume is attached to now
HELPER_A = "i-00000000000000a01"
HELPER_B = "i-00000000000000b02"
HELPER_C = "i-00000000000000c03"
SNAPSHOT = "snap-0123456789abcdef0"
VSS = {Settings().vss_tag_key: Settings().vss_tag_value}


def described(zone: str = "us-east-1a", **instance_tags: str) -> dict[str, Any]:
    """An instance as DescribeInstances gives it: a running Windows helper unless told."""
    return {
        "State": {"Name": "running"},
        "Platform": "windows",
        "Placement": {"AvailabilityZone": zone},
        "Tags": tags.as_list({tags.HELPER: "true", **instance_tags}),
    }


ONLINE = {"PingStatus": "Online", "PlatformType": "Windows"}


def test_the_request_names_the_only_candidate_even_outside_the_stacks_list() -> None:
    settings = Settings(helper_instance_ids=(HELPER_A, HELPER_B))

    assert helper_candidates(HELPER_C, settings, Source(SOURCE)) == (HELPER_C,)


def test_without_a_request_the_candidates_are_the_stacks_helpers() -> None:
    settings = Settings(helper_instance_ids=(HELPER_A, HELPER_B))

    assert helper_candidates("", settings, Source(SOURCE)) == (HELPER_A, HELPER_B)


def test_by_default_no_helper_is_configured_and_the_refusal_says_what_to_set() -> None:
    with pytest.raises(HelperNotUsable) as refusal:
        helper_candidates("", Settings(), Source(SOURCE, ATTACHED))

    message = str(refusal.value)
    assert message.startswith("no helper configured: set HelperInstanceIds")
    assert f"{tags.HELPER}=true" in message
    assert "name one in the request" in message
    assert "AllowSourceAsHelper=true" in message
    assert "unsafe" in message


def test_allowing_the_source_with_no_helper_configured_restores_on_the_backed_up_instance() -> None:
    settings = Settings(allow_source_as_helper=True)

    assert helper_candidates("", settings, Source(SOURCE)) == (SOURCE,)
    assert helper_candidates("", settings, Source("", ATTACHED)) == (ATTACHED,)


def test_allowing_the_source_trusts_the_volumes_attachment_over_the_snapshots_tag() -> None:
    """A backup instance may tag any snapshot with its own ID: the tag must not bring
    another server's disk to it while that disk is attached where it belongs."""
    settings = Settings(allow_source_as_helper=True)

    assert helper_candidates("", settings, Source(SOURCE, ATTACHED)) == (ATTACHED,)


def test_allowing_the_source_does_not_help_a_snapshot_whose_instance_is_unknown() -> None:
    with pytest.raises(HelperNotUsable, match="no helper configured"):
        helper_candidates("", Settings(allow_source_as_helper=True), Source())


def test_a_separate_running_windows_online_helper_has_no_problem() -> None:
    assert problems(HELPER_A, described(), ONLINE, Source(SOURCE, ATTACHED), Settings()) == []


def test_the_backed_up_instance_is_refused_saying_how_to_accept_the_risk() -> None:
    found = problems(SOURCE, described(**VSS), ONLINE, Source(SOURCE), Settings())

    assert len(found) == 1  # its VSS tag is part of the same reason, not a second one
    assert found[0].startswith(
        "is the backed-up instance itself (set AllowSourceAsHelper=true to accept the risk: "
    )
    assert found[0].endswith("a revert may hit the live volume)")


def test_the_instance_the_source_volume_is_attached_to_is_refused() -> None:
    found = problems(ATTACHED, described(), ONLINE, Source(SOURCE, ATTACHED), Settings())

    assert found[0].startswith("is the instance the snapshot's volume is attached to (set Allow")


def test_allowing_the_source_accepts_the_snapshots_own_instance_though_backed_up() -> None:
    allowed = Settings(allow_source_as_helper=True)

    assert problems(SOURCE, described(**VSS), ONLINE, Source(SOURCE, ATTACHED), allowed) == []
    assert problems(ATTACHED, described(**VSS), ONLINE, Source(SOURCE, ATTACHED), allowed) == []


def test_a_backed_up_server_is_refused_as_anothers_helper() -> None:
    found = problems(HELPER_A, described(**VSS), ONLINE, Source(SOURCE), Settings())

    assert found == [
        "is backed up itself (tagged ConsistentSnapshot=WindowsVSS): a production server is no"
        " place to revert restored disks"
    ]


def test_allowing_the_source_does_not_accept_another_backed_up_server() -> None:
    allowed = Settings(allow_source_as_helper=True)

    found = problems(HELPER_A, described(**VSS), ONLINE, Source(SOURCE), allowed)

    assert found[0].endswith("(AllowSourceAsHelper accepts only a snapshot's own instance)")


def test_the_vss_marker_is_the_stacks_own_tag() -> None:
    settings = Settings(vss_tag_key="Backup", vss_tag_value="Nightly")

    assert problems(HELPER_A, described(**VSS), ONLINE, Source(SOURCE), settings) == []
    assert problems(HELPER_A, described(Backup="Nightly"), ONLINE, Source(SOURCE), settings)


def test_every_problem_is_named_at_once() -> None:
    stopped = {**described(**VSS), "State": {"Name": "stopped"}}

    found = problems(HELPER_A, stopped, None, Source(SOURCE), Settings())

    assert [p.split(" (")[0].split(":")[0] for p in found] == [
        "is backed up itself",
        "is stopped, not running",
        "is not registered with SSM",
    ]


def test_a_missing_instance_has_one_problem() -> None:
    assert problems(HELPER_A, None, None, Source(SOURCE), Settings()) == ["does not exist"]


def test_one_unusable_helper_is_refused_with_its_own_reasons() -> None:
    with pytest.raises(HelperNotUsable) as refusal:
        usable_helpers(
            (SOURCE,), {SOURCE: described(**VSS)}, {SOURCE: ONLINE}, Source(SOURCE), Settings()
        )

    assert str(refusal.value).startswith(f"helper {SOURCE} is the backed-up instance itself")


def test_unusable_helpers_are_left_out_when_another_is_usable() -> None:
    instances = {HELPER_A: described(**VSS), HELPER_B: described("us-east-1b")}

    found = usable_helpers(
        (HELPER_A, HELPER_B, HELPER_C), instances, {HELPER_B: ONLINE}, Source(SOURCE), Settings()
    )

    assert found == [Helper(HELPER_B, "us-east-1b")]


def test_when_no_helper_is_usable_each_ones_reasons_are_named() -> None:
    with pytest.raises(HelperNotUsable) as refusal:
        usable_helpers(
            (HELPER_A, HELPER_B), {HELPER_A: described(**VSS)}, {}, Source(SOURCE), Settings()
        )

    message = str(refusal.value)
    assert message.startswith("none of the 2 helpers is usable: ")
    assert f"helper {HELPER_A} is backed up itself" in message
    assert f"helper {HELPER_B} does not exist" in message


A = Helper(HELPER_A, "us-east-1a")
B = Helper(HELPER_B, "us-east-1b")
C = Helper(HELPER_C, "us-east-1b")


def test_the_least_busy_helper_is_picked() -> None:
    loads = {HELPER_A: 2, HELPER_B: 1, HELPER_C: 3}

    assert pick_helper([A, B, C], loads, "us-east-1a", SNAPSHOT) == B


def test_among_equally_busy_helpers_the_source_volumes_zone_wins() -> None:
    loads = {HELPER_A: 1, HELPER_B: 1, HELPER_C: 1}

    assert pick_helper([B, C, A], loads, "us-east-1a", SNAPSHOT) == A


def test_a_free_helper_in_another_zone_beats_a_busy_one_in_the_sources() -> None:
    assert pick_helper([A, B], {HELPER_A: 1}, "us-east-1a", SNAPSHOT) == B


def test_the_last_tie_break_is_the_same_for_a_snapshot_whatever_the_order() -> None:
    picked = {pick_helper(order, {}, "", SNAPSHOT) for order in ([A, B, C], [C, B, A], [B, A, C])}

    assert len(picked) == 1


def test_the_last_tie_break_spreads_snapshots_over_the_helpers() -> None:
    snapshots = [f"snap-{n:017x}" for n in range(300)]

    counts = dict.fromkeys((HELPER_A, HELPER_B, HELPER_C), 0)
    for snapshot_id in snapshots:
        counts[pick_helper([A, B, C], {}, "", snapshot_id).instance_id] += 1

    assert all(70 <= n <= 130 for n in counts.values()), counts
