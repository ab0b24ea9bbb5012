"""The simulator's virtual clock: one time for every thread that takes part in a run.

Concurrent executions, their Map iterations and Lambda invocations are real threads, but
they take turns: exactly one participant runs at a time and the others wait for their turn.
A participant gives up its turn only where it would wait on AWS: `sleep` (a Wait state, a
Retry interval, an SDK backoff, a modelled latency), `wait` for a condition another
participant will bring about (a thread it joins, an event), or by ending. The clock then
hands the turn to the participant due first, by (virtual time, sequence number), and moves
time forward only when every participant waits and none is due now. Work between waits
takes no virtual time, and the same scenario always runs in the same order.

A thread that is not a participant must not wait on a clock that has participants. Without
participants (the unit tests of the EC2 and SSM models) `sleep` simply moves time on.
"""

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_START = datetime(2026, 11, 25, tzinfo=UTC)
# How often the driver, while it waits for its turn, looks whether the participant running
# has stopped taking turns (a blocking call the clock knows nothing of).
_STUCK_POLL_SECONDS = 0.25

Moment = datetime | Callable[[], datetime | None] | None


class RunStopped(RuntimeError):
    """The run could not go on; the message says which participants and why."""


class Deadlock(RunStopped):
    """Every participant waits for another one, and none will wake up as time passes."""


class Stuck(RunStopped):
    """A participant kept its turn for too long in real time without waiting on the clock."""


class Stopped(BaseException):
    """Raised in a participant whose run has ended under it.

    A BaseException, so that moto's `except Exception` around a state does not turn the end
    of the run into a state failure; the participant's thread ends quietly.
    """


@dataclass(eq=False)
class Participant:
    """A thread taking part in the run, and what it waits for."""

    name: str
    tag: str = ""  # what it works for: an execution's name, a function's logical ID
    service: bool = False  # an AWS service loop (event delivery, schedules)
    state: str = "ready"  # ready | running | blocked | done
    key: tuple[datetime, int] = (DEFAULT_START, 0)
    reason: str = ""
    wake_at: Moment = None
    idle: bool = False  # its wake-up alone does not make time pass
    until: Callable[[], bool] | None = None
    real_deadline: float | None = None
    woke: str = ""  # why it was last given its turn: time | condition | deadline | start
    thread_id: int | None = None
    _turn: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._turn.acquire()

    def wake(self) -> datetime | None:
        return self.wake_at() if callable(self.wake_at) else self.wake_at


class VirtualClock:
    """Time that moves only when every participant waits."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError("the virtual start time must be timezone-aware")
        self._start = start.astimezone(UTC)
        self._now = self._start
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._participants: list[Participant] = []
        self._by_thread: dict[int, Participant] = {}
        self._running: Participant | None = None
        self._running_since = 0.0
        self._driver: Participant | None = None
        self._active = False
        self._closed = False
        self._failure: BaseException | None = None
        # Real seconds a participant may keep its turn before the run is declared stuck.
        self.stuck_seconds = 120.0
        # Called in a participant's own thread each time it gets its turn back.
        self.on_resume: list[Callable[[Participant], None]] = []
        # Names the threads moto starts, from their target and the participant starting them.
        self.namer: Callable[[Any, Participant | None], tuple[str, str]] = _default_name

    # -- time -----------------------------------------------------------------------------
    @property
    def start(self) -> datetime:
        return self._start

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def elapsed(self) -> float:
        """Virtual seconds since the start."""
        return (self.now() - self._start).total_seconds()

    def advance(self, seconds: float) -> None:
        """Move time on directly: only while no participant shares the clock."""
        if seconds < 0:
            raise ValueError(f"time cannot go back ({seconds} s)")
        self.advance_to(self.now() + timedelta(seconds=seconds))

    def advance_to(self, moment: datetime) -> None:
        """Move to `moment` if it lies ahead; a moment in the past changes nothing."""
        with self._lock:
            if self._active:
                raise RuntimeError("participants share this clock: wait with sleep()")
            if moment > self._now:
                self._now = moment

    def sleep(self, seconds: float) -> None:
        """A waiter (a Wait state, a Retry interval, an SDK backoff) lets time pass."""
        if seconds < 0:
            raise ValueError(f"time cannot go back ({seconds} s)")
        me = self._me()
        if me is None:
            self.advance(seconds)
            return
        self._block(
            me, wake_at=self.now() + timedelta(seconds=seconds), reason=f"sleeping {seconds:g} s"
        )

    def sleep_until(self, moment: datetime, *, idle: bool = False, reason: str = "") -> None:
        """Sleep to `moment`. An idle sleeper (a schedule) never makes time pass on its own."""
        me = self._me()
        if me is None:
            self.advance_to(moment)
            return
        self._block(me, wake_at=moment, idle=idle, reason=reason or f"sleeping to {moment}")

    # -- waiting on each other ------------------------------------------------------------
    def wait(
        self,
        until: Callable[[], bool] | None,
        *,
        reason: str,
        wake_at: Moment = None,
        real_deadline: float | None = None,
    ) -> str:
        """Wait until `until()` holds, virtual time reaches `wake_at` (a moment or a function
        giving the next one) or real time reaches `real_deadline`; say which.

        `until` is asked while the clock chooses who runs next: it must be quick and must not
        wait itself.
        """
        if until is not None and until():
            return "condition"
        me = self._me()
        if me is None:
            raise RuntimeError(f"{threading.current_thread().name} is no participant: {reason}")
        return self._block(
            me, until=until, wake_at=wake_at, reason=reason, real_deadline=real_deadline
        )

    def Event(self, what: str = "an event") -> "ClockEvent":
        return ClockEvent(self, what)

    def Thread(self, *args: Any, **kwargs: Any) -> threading.Thread:
        """A drop-in for threading.Thread whose thread is a participant."""
        return _ParticipantThread(self, *args, **kwargs)

    def spawn(
        self, name: str, target: Callable[[], None], *, tag: str = "", service: bool = False
    ) -> threading.Thread:
        """Start `target` in a new participant thread; it runs when its turn comes. A service
        (event delivery, schedules) runs for the whole run and never counts as busy. An error
        in `target` ends the run: the driver raises it."""

        def guarded() -> None:
            try:
                target()
            except Exception as exc:
                self.close(exc)

        thread = _ParticipantThread(self, target=guarded, daemon=True, name=name)
        thread.participant_name = (name, tag)
        thread.service = service
        thread.start()
        return thread

    # -- the run --------------------------------------------------------------------------
    @contextmanager
    def driving(self, name: str = "scenario") -> Iterator[Participant]:
        """The calling thread takes part, holding the first turn; when the block ends so does
        the run: participants still waiting are stopped."""
        with self._lock:
            if self._active:
                raise RuntimeError("the clock is already running a simulation")
            driver = self._register(name, "", service=False)
            driver.state = "running"
            driver.thread_id = threading.get_ident()
            self._by_thread[driver.thread_id] = driver
            self._driver = self._running = driver
            self._running_since = time.monotonic()
            self._active, self._closed, self._failure = True, False, None
        try:
            yield driver
        finally:
            self.close()
            with self._lock:
                # The driver's block has ended: a later driver (an operator after the run)
                # must not wait for it.
                driver.state = "done"
                self._by_thread.pop(threading.get_ident(), None)
                self._driver = None

    def close(self, failure: BaseException | None = None) -> None:
        """End the run: every participant still waiting stops (the driver raises `failure`)."""
        with self._lock:
            if failure is not None and self._failure is None:
                self._failure = failure
            self._closed = True
            self._active = False
            for participant in self._participants:
                if participant.state in ("ready", "blocked"):
                    participant.state = "done"
                    participant._turn.release()
            self._participants = [p for p in self._participants if p.state != "done"]

    def current(self) -> Participant | None:
        """The participant the calling thread is, if any."""
        with self._lock:
            return self._by_thread.get(threading.get_ident())

    def busy(self, *, besides: Participant | None = None) -> list[Participant]:
        """Participants other than services (and `besides`) that have not ended."""
        with self._lock:
            return [
                p
                for p in self._participants
                if p is not besides and not p.service and p.state != "done"
            ]

    # -- the turns ------------------------------------------------------------------------
    def _me(self) -> Participant | None:
        with self._lock:
            me = self._by_thread.get(threading.get_ident())
            if me is None:
                if self._active:
                    raise RuntimeError(
                        f"thread {threading.current_thread().name} waits on the virtual clock "
                        "but is no participant of the run"
                    )
                return None
            # A participant of an earlier run (stopped by its close) stops too, even once a
            # later run has started: an operator's second operate() right after the first.
            if self._closed or me.state == "done":
                raise Stopped()
            return me

    def _register(self, name: str, tag: str, service: bool) -> Participant:
        participant = Participant(
            name, tag=tag, service=service, key=(self._now, next(self._seq)), woke="start"
        )
        self._participants.append(participant)
        return participant

    def _block(
        self,
        me: Participant,
        *,
        reason: str,
        wake_at: Moment = None,
        idle: bool = False,
        until: Callable[[], bool] | None = None,
        real_deadline: float | None = None,
    ) -> str:
        with self._lock:
            if self._running is not me:
                raise RuntimeError(f"{me.name} waits on the clock without holding the turn")
            me.state, me.reason, me.wake_at, me.idle = "blocked", reason, wake_at, idle
            me.until, me.real_deadline, me.woke = until, real_deadline, ""
            me.key = (self._now, next(self._seq))
            self._hand_on()
        self._await_turn(me)
        me.until = me.wake_at = None
        return me.woke

    def _hand_on(self) -> None:
        """Give the turn to whoever is due first (the lock is held)."""
        chosen = self._choose()
        if chosen is None:
            self.close(Deadlock(self._deadlock_message()))
            return
        chosen.state = "running"
        chosen.reason = ""
        self._running = chosen
        self._running_since = time.monotonic()
        chosen._turn.release()

    def _choose(self) -> Participant | None:
        real_now = time.monotonic()
        best: tuple[tuple[datetime, int], Participant, str] | None = None
        sleepers: list[tuple[datetime, int, Participant]] = []
        for p in self._participants:
            key, why = p.key, "start"
            if p.state == "blocked":
                if p.until is not None and p.until():
                    key, why = (self._now, p.key[1]), "condition"
                elif p.real_deadline is not None and real_now >= p.real_deadline:
                    key, why = (self._now, p.key[1]), "deadline"
                else:
                    wake = p.wake()
                    if wake is None:
                        continue
                    if wake > self._now:
                        sleepers.append((wake, p.key[1], p))
                        continue
                    key, why = (wake, p.key[1]), "time"
            elif p.state != "ready":
                continue
            if best is None or key < best[0]:
                best = (key, p, why)
        if best is None:
            # Nobody can go on now: time passes to the first wake-up, unless only services
            # would wake (a schedule alone does not keep a stuck run going).
            if not any(not p.idle for _, _, p in sleepers):
                return None
            wake, _, chosen = min(sleepers, key=lambda s: (s[0], s[1]))
            self._now = wake
            best = ((wake, 0), chosen, "time")
        _, chosen, why = best
        chosen.woke = why
        return chosen

    def _await_turn(self, me: Participant) -> None:
        timeout = _STUCK_POLL_SECONDS if me is self._driver else -1
        while not me._turn.acquire(timeout=timeout):
            with self._lock:
                held = time.monotonic() - self._running_since
                if not self._closed and self._running is not None and held > self.stuck_seconds:
                    self.close(
                        Stuck(
                            f"{self._running.name} has run for {held:.0f} s of real time without "
                            "waiting on the virtual clock (a blocking call the simulator does "
                            "not know?)"
                        )
                    )
        with self._lock:
            if self._closed:
                if me is self._driver and self._failure is not None:
                    raise self._failure
                raise Stopped()
        for resume in self.on_resume:
            resume(me)

    def _deadlock_message(self) -> str:
        waiting = [
            f"{p.name} ({p.reason})"
            for p in self._participants
            if p.state == "blocked" and not p.service
        ]
        offset = (self._now - self._start).total_seconds()
        return (
            f"deadlock at +{offset:.1f} s of virtual time: every participant waits for another "
            "and none will wake up as time passes: " + "; ".join(waiting)
        )

    # -- threads --------------------------------------------------------------------------
    def _started(self, thread: "_ParticipantThread") -> Participant | None:
        with self._lock:
            if not self._active:
                return None
            parent = self._by_thread.get(threading.get_ident())
            name, tag = thread.participant_name or self.namer(thread.target, parent)
            return self._register(name, tag, service=thread.service)

    def _begin(self, me: Participant) -> None:
        with self._lock:
            me.thread_id = threading.get_ident()
            self._by_thread[me.thread_id] = me
        self._await_turn(me)

    def _end(self, me: Participant) -> None:
        with self._lock:
            if me.thread_id is not None:
                self._by_thread.pop(me.thread_id, None)
            was_running = self._running is me
            me.state = "done"
            self._participants = [p for p in self._participants if p is not me]
            if was_running and not self._closed:
                self._running = None
                self._hand_on()


def _default_name(target: Any, parent: Participant | None) -> tuple[str, str]:
    name = getattr(target, "__qualname__", "thread")
    return (f"{parent.name} > {name}" if parent else name), (parent.tag if parent else "")


class ClockEvent:
    """threading.Event for participants: waiting on it lets the others run."""

    def __init__(self, clock: VirtualClock, what: str) -> None:
        self._clock = clock
        self._what = what
        self._flag = False
        self._sets = 0

    def is_set(self) -> bool:
        return self._flag

    isSet = is_set

    def set(self) -> None:
        self._flag = True
        self._sets += 1

    def clear(self) -> None:
        self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        seen = self._sets
        wake = None if timeout is None else self._clock.now() + timedelta(seconds=timeout)
        self._clock.wait(
            lambda: self._sets != seen, reason=f"waiting for {self._what}", wake_at=wake
        )
        return self._flag or self._sets != seen


class _ParticipantThread(threading.Thread):
    def __init__(self, clock: VirtualClock, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock: VirtualClock | None = clock
        self.participant_name: tuple[str, str] | None = None
        self.service = False
        self.participant: Participant | None = None

    @property
    def target(self) -> Any:
        return getattr(self, "_target", None)

    def start(self) -> None:
        assert self._clock is not None
        self.participant = self._clock._started(self)
        super().start()

    def run(self) -> None:
        me, clock = self.participant, self._clock
        if me is None or clock is None:
            super().run()
            return
        try:
            clock._begin(me)
            super().run()
        except Stopped:
            pass
        finally:
            clock._end(me)
            # moto keeps every thread it starts (TMP_THREADS): keep nothing of the run.
            self.participant = self._clock = None

    def join(self, timeout: float | None = None) -> None:
        them, clock = self.participant, self._clock
        if them is None or clock is None or clock.current() is None:
            super().join(timeout)
            return
        wake = None if timeout is None else clock.now() + timedelta(seconds=timeout)
        clock.wait(lambda: them.state == "done", reason=f"waiting for {them.name}", wake_at=wake)
        if them.state == "done":
            super().join()
