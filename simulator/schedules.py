"""EventBridge schedule expressions the simulator fires: rate(...) and daily cron(...)."""

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_RATE = re.compile(r"^rate\((\d+) (minutes?|hours?|days?)\)$")
_CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
SUPPORTED = (
    "rate(N minute|minutes|hour|hours|day|days), or cron(MINUTES HOURS * * ? *) where "
    "MINUTES and HOURS are numbers, lists (0,30), ranges (8-17), steps (*/15) or *, and "
    "day-of-month, month, day-of-week and year are wildcards (* or ?)"
)


class ScheduleError(ValueError):
    """A schedule expression the simulator cannot fire."""


@dataclass(frozen=True)
class Schedule:
    """When a schedule fires: `every` seconds from `origin`, or at `hours`:`minutes` daily."""

    expression: str
    every: float = 0.0
    origin: datetime | None = None
    minutes: tuple[int, ...] = ()
    hours: tuple[int, ...] = ()
    zone: ZoneInfo | None = None

    def next_after(self, moment: datetime) -> datetime:
        """The first firing strictly after `moment`."""
        if self.every:
            assert self.origin is not None
            periods = int((moment - self.origin).total_seconds() // self.every) + 1
            return self.origin + timedelta(seconds=periods * self.every)
        assert self.zone is not None
        local = moment.astimezone(self.zone)
        day: date = local.date()
        for _ in range(3):
            for hour in self.hours:
                for minute in self.minutes:
                    fire = datetime.combine(day, time(hour, minute), self.zone)
                    if fire > moment:
                        return fire.astimezone(moment.tzinfo)
            day += timedelta(days=1)
        raise AssertionError("a daily schedule fires within two days")


def parse(expression: str, origin: datetime, timezone: str = "UTC") -> Schedule:
    """The schedule of `expression`; rate schedules count from `origin` (the deployment)."""
    text = " ".join(str(expression).split())
    rate = _RATE.match(text)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        if count < 1 or (count == 1) != (rate.group(2) == unit):
            raise ScheduleError(
                f"{expression!r}: write rate(1 {unit}) or rate(N {unit}s) with N > 1"
            )
        return Schedule(text, every=count * _UNIT_SECONDS[unit], origin=origin)
    cron = _CRON.match(text)
    if not cron:
        raise ScheduleError(f"unsupported schedule expression {expression!r}: use {SUPPORTED}")
    minutes, hours, day_of_month, month, day_of_week, year = cron.groups()
    if day_of_month not in "*?" or month != "*" or day_of_week not in "*?" or year != "*":
        raise ScheduleError(
            f"unsupported schedule expression {expression!r}: the simulator fires daily "
            f"schedules only; use {SUPPORTED}"
        )
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{expression!r}: unknown time zone {timezone!r}") from None
    return Schedule(
        text,
        minutes=_field(expression, minutes, 59),
        hours=_field(expression, hours, 23),
        zone=zone,
    )


def _field(expression: str, text: str, highest: int) -> tuple[int, ...]:
    values: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", part)
        if not match:
            raise ScheduleError(f"unsupported schedule expression {expression!r}: {part!r}")
        first, last, step = match.groups()
        low = 0 if first == "*" else int(first)
        high = highest if first == "*" or (step and not last) else int(last or first)
        if not 0 <= low <= high <= highest:
            raise ScheduleError(f"{expression!r}: {part!r} is out of range 0-{highest}")
        values.update(range(low, high + 1, int(step or 1)))
    return tuple(sorted(values))
