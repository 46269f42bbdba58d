"""The completion timeline: calendar months from a candidate's start date to the target date.

Pure date arithmetic, no storage and no Flask, so the rules can be tested on their own.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date


def add_months(start: date, months: int) -> date:
    """The same day ``months`` calendar months later, clamped to the month's last day (31 Aug + 6 = 28/29 Feb)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def whole_months_between(earlier: date, later: date) -> int:
    """Complete calendar months from ``earlier`` to ``later`` (0 when ``later`` is not after it)."""
    if later <= earlier:
        return 0
    months = (later.year - earlier.year) * 12 + later.month - earlier.month
    if add_months(earlier, months) > later:
        months -= 1
    return months


@dataclass(frozen=True)
class Timeline:
    """Where a candidate stands against the completion target on ``today``."""

    start: date
    target: date
    today: date
    months_total: int
    warn_months_remaining: int

    @property
    def started(self) -> bool:
        return self.today >= self.start

    @property
    def months_elapsed(self) -> int:
        return min(whole_months_between(self.start, self.today), self.months_total)

    @property
    def months_remaining(self) -> int:
        """Whole months left before the target date (0 from the last month on)."""
        return whole_months_between(self.today, self.target)

    @property
    def days_remaining(self) -> int:
        return max((self.target - self.today).days, 0)

    @property
    def overdue(self) -> bool:
        return self.today > self.target

    @property
    def months_overdue(self) -> int:
        return whole_months_between(self.target, self.today)

    @property
    def short_of_time(self) -> bool:
        """Inside the warning window but not yet past the target date."""
        return not self.overdue and self.months_remaining < self.warn_months_remaining

    @property
    def percent_elapsed(self) -> int:
        span = (self.target - self.start).days
        used = (min(max(self.today, self.start), self.target) - self.start).days
        return round(100 * used / span) if span > 0 else 100


def timeline(start: date, today: date, months: int, warn_months_remaining: int = 0) -> Timeline:
    """The timeline of a candidate who started on ``start``, with a target ``months`` later."""
    if months < 1:
        raise ValueError("the completion target must be at least one month")
    return Timeline(start, add_months(start, months), today, months, warn_months_remaining)
