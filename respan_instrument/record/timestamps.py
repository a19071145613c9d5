"""Pure: the timestamps of a log, as Respan's logging API spells them."""

from __future__ import annotations

_second: tuple[int, str] = (0, "1970-01-01T00:00:00")  # the last second formatted, as a whole


def iso(ns: int) -> str:
    """ISO-8601 UTC with microseconds and a Z (as `datetime.isoformat()` spells it).

    The worker writes two a log: the date and time part is formatted once a second, by integer
    arithmetic (a process that logs now and then formats it for nearly every log).
    """
    global _second
    sec, us = divmod((ns + 500) // 1000, 1_000_000)
    cached_sec, prefix = _second
    if sec != cached_sec:
        prefix = _civil(sec)
        _second = (sec, prefix)
    # (the zero-padded microseconds as the tail of a 7-digit number: a format spec costs 3x)
    return prefix + "." + str(us + 1_000_000)[1:] + "Z" if us else prefix + "Z"


def _civil(sec: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS` of a Unix time in UTC (proleptic Gregorian, H. Hinnant's
    days-to-civil: 400-year eras of 146097 days, years starting on 1 March)."""
    days, rem = divmod(sec, 86400)
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    z = days + 719468  # days since 0000-03-01
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"


__all__ = ["iso"]
