"""Times for the scheduler: time zones, durations, send times and cron triggers; raise ConfigError."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from .. import timeutil
from ..config import Config
from ..errors import ConfigError, ScheduleError

_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")     # crontab numbering: 0 and 7 = Sunday
_DOW_PART = re.compile(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?\Z")


def zone(config: Config) -> ZoneInfo:
    """Return the [schedule] timezone; raises ConfigError for an unknown name."""
    return zone_named(config.schedule.timezone or "UTC", "schedule.timezone")


def zone_named(name: str, key: str = "timezone") -> ZoneInfo:
    """Return the IANA time zone called name; raises ConfigError naming key when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(f"{key}: unknown time zone {name!r} (use an IANA name such as "
                          "Europe/Paris, America/New_York or UTC)") from err


def parse_duration(text: str, key: str) -> timedelta:
    """Return the timedelta of "90s", "30m", "6h", "1d12h" or "2w"; raises ConfigError naming key."""
    try:
        return timeutil.parse_duration(text)
    except ValueError as err:
        raise ConfigError(f"{key}: {text!r} is not a duration (use e.g. 90s, 30m, 6h, 1d12h, 2w)") from err


def grace_seconds(config: Config) -> int:
    """Return [schedule] misfire_grace_time in whole seconds (at least 1); raises ConfigError."""
    grace = parse_duration(config.schedule.misfire_grace_time, "schedule.misfire_grace_time")
    return max(int(grace.total_seconds()), 1)


def parse_at(text: str, tz: ZoneInfo, now: datetime) -> datetime:
    """Return the aware moment a send time names (`schedule --at`, the editor, the API), local to
    tz unless it has an offset; raises ScheduleError.

    Refuses a date without a time, a local time skipped by a clock change, and a time not after now.
    """
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise ScheduleError(f"send time {text!r}: not a date and time (use e.g. \"2026-12-01 09:00\" or "
                          "2026-12-01T09:00+01:00)") from err
    if len(value) <= 10:
        raise ScheduleError(f"send time {text!r}: give a time of day too, e.g. \"{value} 09:00\"")
    try:
        return _checked_moment(text, moment, tz, now)
    except OverflowError as err:      # year 1 or 9999 moved across the date line
        raise ScheduleError(f"send time {text!r}: that date is out of range") from err


def _checked_moment(text: str, moment: datetime, tz: ZoneInfo, now: datetime) -> datetime:
    """Return moment made aware in tz when it has no offset; raises ScheduleError for a skipped
    local time or a moment not after now, OverflowError when it cannot be moved to UTC."""
    if moment.tzinfo is not None:
        moment.astimezone(timezone.utc)     # an offset that takes it out of year 1..9999
    if moment.tzinfo is None:
        local = moment.replace(tzinfo=tz)
        # A time inside a spring-forward gap does not exist: it would silently move by an hour.
        if local.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) != moment:
            raise ScheduleError(f"send time {text!r}: that local time does not exist in {tz.key} "
                              "(the clocks change then)")
        moment = local
    if moment <= now:
        raise ScheduleError(f"send time {text!r}: that time is in the past (now it is "
                          f"{now.astimezone(moment.tzinfo):%Y-%m-%d %H:%M:%S %Z})")
    return moment


def _weekday_part(part: str) -> list[str]:
    """Return the day names one crontab day-of-week term stands for (numbers in crontab's meaning)."""
    found = _DOW_PART.match(part)
    if not found:
        return [part]               # names ("mon", "mon-fri") mean the same in both; APScheduler checks
    start, end, step = found.groups()
    if start == "*":
        first, last = 0, 6
    else:
        first = int(start)
        last = int(end) if end is not None else (6 if step else first)
    if not (0 <= first <= 7 and 0 <= last <= 7 and first <= last) or step == "0":
        raise ValueError(f"day of week {part!r} is out of range (0-7, 0 and 7 are Sunday)")
    return [_DOW_NAMES[n % 7] for n in range(first, last + 1, int(step or 1))]


def crontab_weekdays(field: str) -> str:
    """Return a crontab day-of-week field in APScheduler 3's terms; raises ValueError when out of range.

    APScheduler 3 numbers weekdays from Monday = 0 while crontab uses Sunday = 0 (its documented
    historical mismatch), so "0 7 * * 1" would fire on Tuesdays: numbers become day names here.
    """
    if field == "*" or not re.search(r"\d", field):
        return field
    names: list[str] = []
    for part in field.lower().split(","):
        for name in _weekday_part(part):
            if name not in names:
                names.append(name)
    return "*" if len(names) == 7 else ",".join(names)


def cron_trigger(expr: str, tz: ZoneInfo) -> CronTrigger:
    """Return the trigger of a 5-field crontab expression in tz; raises ConfigError when it is bad."""
    fields = (expr or "").split()
    try:
        if len(fields) != 5:
            raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
        minute, hour, day, month, weekday = fields
        return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                           day_of_week=crontab_weekdays(weekday), timezone=tz)
    except ValueError as err:
        raise ConfigError(f"schedule.cron: invalid cron expression {expr!r}: {err}") from err


def latest_fire(trigger: CronTrigger, now: datetime) -> datetime | None:
    """Return the trigger's latest fire time at or before now (None if none in the last ~16 years)."""
    lookback = timedelta(minutes=1)
    # Doubling reaches back past any real period (a 29 February cron fires every 4 to 8 years).
    while lookback < timedelta(days=6000):
        fire = trigger.get_next_fire_time(None, now - lookback)
        if fire is not None and fire <= now:
            # Walk forward: the window holds about twice the period, so this is a short loop.
            while True:
                following = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
                if following is None or following > now or following <= fire:
                    return fire
                fire = following
        lookback *= 2
    return None


def auto_issue_id(fired_at: datetime, tz: ZoneInfo) -> str:
    """Return the id of the automatic issue of a firing: auto-YYYYMMDD-HHMM in the schedule's zone."""
    return f"auto-{fired_at.astimezone(tz):%Y%m%d-%H%M}"
