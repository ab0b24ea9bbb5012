"""docs/recover.md shows each way of recovering with its real output, and nothing a
recovery creates is untagged (issue #15, "Done when")."""

from datetime import UTC, datetime

import pytest

from tests.cli.recover_page import PAGE, PATHS, Normalized, Ran, render, run_session, section_of
from vss_restore import tags

RECOVERED_BY = f"{tags.PREFIX}recovered-by"
RECOVERED_AT = f"{tags.PREFIX}recovered-at"


@pytest.fixture(scope="module")
def session() -> tuple[list[Ran], Normalized]:
    """One run of every way, shared: the page and the listing see the same account."""
    return run_session()


def test_the_page_shows_what_the_commands_print_on_the_simulator(
    session: tuple[list[Ran], Normalized],
) -> None:
    ran, normalized = session

    assert section_of(PAGE.read_text(encoding="utf-8")) == render(ran, normalized), (
        "docs/recover.md's examples differ from what `recover` prints now; look at the "
        "difference, then regenerate them with "
        "PYTHONPATH=functions:. .venv/bin/python -m tests.cli.recover_page"
    )


def test_each_way_ends_as_the_page_says(session: tuple[list[Ran], Normalized]) -> None:
    """The page could be regenerated from a broken run: what each command ended with is
    held here too, so that a regenerated page cannot make a failure look documented."""
    ran, _ = session
    codes = [[typed.said.code for typed in one.typed] for one in ran]
    to_its_server, as_new_instance, verify_first = ran

    assert [one.way for one in ran] == list(PATHS)
    assert codes == [[2, 0], [0], [0, 0]]
    assert "SIGNATURE COLLISION" in to_its_server.typed[0].said.out
    assert "stopped before creating anything" in to_its_server.typed[0].said.err
    assert "left i-" in as_new_instance.typed[0].said.out
    assert "through the workflow first" in verify_first.typed[1].said.out


def test_nothing_a_recovery_creates_is_untagged(session: tuple[list[Ran], Normalized]) -> None:
    """After each way, every volume, instance, image, snapshot and network interface the
    account gained carries vss-restore:resource=recovered-..., who and when; the one
    exception is the workflow's own consistent snapshot (--verify-first), tagged as the
    workflow tags it."""
    ran, _ = session
    untagged = []
    gained_kinds = set()
    for one in ran:
        for kind, found in one.gained.items():
            for resource_id, carried in found.items():
                gained_kinds.add(kind)
                resource = carried.get(tags.RESOURCE, "")
                if kind == "snapshot" and resource == tags.CONSISTENT_SNAPSHOT:
                    continue
                if not (
                    resource.startswith("recovered-")
                    and carried.get(RECOVERED_BY, "").startswith("arn:aws:")
                    and carried.get(RECOVERED_AT, "").endswith("Z")
                ):
                    untagged.append((one.way.title, kind, resource_id, carried))

    assert untagged == []
    # The listing saw what each way makes: it would pass vacuously on an empty account.
    to_its_server, as_new_instance, verify_first = (one.gained for one in ran)
    assert len(to_its_server["volume"]) == 1
    assert len(as_new_instance["instance"]) == 1
    assert len(as_new_instance["network-interface"]) == 1
    assert len(as_new_instance["volume"]) == 2  # the launch's own root deleted
    assert len(verify_first["volume"]) == 1
    assert len(verify_first["snapshot"]) == 1
    assert gained_kinds >= {"volume", "instance", "network-interface", "snapshot"}


def test_the_normalization_changes_only_ids_and_the_real_clocks_time() -> None:
    normalized = Normalized(
        started=datetime(2026, 12, 5, 11, 0, tzinfo=UTC),
        ended=datetime(2026, 12, 5, 11, 2, tzinfo=UTC),
    )
    printed = (
        "vol-0abc12345678def01 from snap-1234567890abcdef0 of 2026-11-25 00:00:10, "
        "as of 2026-12-05 11:01:30 UTC, recovered-at 2026-12-05T11:01:30Z, "
        "on-demand-snap-1234567890abcdef0-20261205T110130Z, again vol-0abc12345678def01, "
        "then vol-0ffffffffffffffff"
    )

    assert normalized(printed) == (
        "vol-00000000000000001 from snap-00000000000000001 of 2026-11-25 00:00:10, "
        "as of 2026-11-27 09:30:00 UTC, recovered-at 2026-11-27T09:30:00Z, "
        "on-demand-snap-00000000000000001-20261127T093000Z, again vol-00000000000000001, "
        "then vol-00000000000000002"
    )
