"""The virtual clock: time moves only when every participant waits, and never backwards."""

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from simulator.clock import DEFAULT_START, Deadlock, Stopped, Stuck, VirtualClock


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


def _run(clock: VirtualClock, workers: dict[str, Callable[[], None]]) -> None:
    """Start each worker as a participant and wait, as the scenario does, until all ended."""
    with clock.driving() as scenario:
        for name, work in workers.items():
            clock.spawn(name, work)
        clock.wait(lambda: not clock.busy(besides=scenario), reason="waiting for the workers")


def test_participants_sleep_side_by_side_and_wake_in_time_order() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    def sleeper(name: str, *naps: float) -> Callable[[], None]:
        def work() -> None:
            for nap in naps:
                clock.sleep(nap)
                woke.append((name, clock.elapsed()))

        return work

    _run(clock, {"a": sleeper("a", 10, 10, 10), "b": sleeper("b", 15, 15)})

    # Thirty seconds for both, not fifty-five; at 30 s b wakes first: it fell asleep first.
    assert clock.elapsed() == 30
    assert woke == [("a", 10), ("b", 15), ("a", 20), ("b", 30), ("a", 30)]


def test_participants_waiting_on_each_other_end_the_run_naming_them() -> None:
    clock = VirtualClock()
    first, second = clock.Event("the first signal"), clock.Event("the second signal")

    def one() -> None:
        first.wait()
        second.set()

    def other() -> None:
        second.wait()
        first.set()

    with pytest.raises(Deadlock) as stuck:
        _run(clock, {"one": one, "other": other})
    message = str(stuck.value)
    assert "one (waiting for the first signal)" in message
    assert "other (waiting for the second signal)" in message
    assert "scenario (waiting for the workers)" in message


def test_a_participant_that_never_waits_on_the_clock_is_stopped_by_the_real_time_limit() -> None:
    clock = VirtualClock()
    clock.stuck_seconds = 0.3
    released = threading.Event()

    with pytest.raises(Stuck, match="hog has run for"):
        _run(clock, {"hog": lambda: released.wait(5)})
    released.set()


def test_an_event_wait_with_a_timeout_times_out_in_virtual_time() -> None:
    clock = VirtualClock()
    never = clock.Event("a signal nobody sends")
    seen: list[bool] = []
    _run(clock, {"waiter": lambda: seen.append(never.wait(timeout=600))})
    assert seen == [False]
    assert clock.elapsed() == 600


def test_a_service_of_an_ended_run_stops_even_once_the_next_run_has_begun() -> None:
    # The CLI's tests operate the account twice in a row: the first run's EventBridge thread,
    # woken by the first run's end, may look at the clock only once the second has begun.
    clock = VirtualClock()
    second_begun = threading.Event()
    ended: list[str] = []

    def service() -> None:
        try:
            clock.sleep(3600)  # until the first run ends
            second_begun.wait(5)
            clock.sleep(10)
        except Stopped:
            ended.append("stopped")
            raise

    with clock.driving("first"):
        thread = clock.spawn("service", service, service=True)
        clock.sleep(1)
    with clock.driving("second"):
        second_begun.set()
        thread.join(5)
        clock.sleep(5)  # the second run goes on, undisturbed

    assert ended == ["stopped"]
    assert clock.elapsed() == 6
