"""The virtual clock: time moves only when someone waits, and never backwards."""

from datetime import UTC, datetime, timedelta

import pytest

from simulator.clock import DEFAULT_START, VirtualClock


def test_time_stands_still_until_someone_waits() -> None:
    clock = VirtualClock()
    assert clock.now() == DEFAULT_START == datetime(2026, 11, 25, tzinfo=UTC)
    clock.sleep(3600)
    assert clock.now() - DEFAULT_START == timedelta(hours=1)
    assert clock.elapsed() == 3600


def test_advance_to_a_past_moment_changes_nothing() -> None:
    clock = VirtualClock()
    clock.advance(10)
    clock.advance_to(DEFAULT_START)
    assert clock.elapsed() == 10
    clock.advance_to(DEFAULT_START + timedelta(seconds=25))
    assert clock.elapsed() == 25


def test_time_cannot_go_back_and_needs_a_timezone() -> None:
    with pytest.raises(ValueError, match="cannot go back"):
        VirtualClock().advance(-1)
    with pytest.raises(ValueError, match="timezone"):
        VirtualClock(datetime(2026, 1, 1))
