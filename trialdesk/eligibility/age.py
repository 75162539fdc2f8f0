"""Age from date of birth, in completed years or exactly, at an evaluation date."""

from __future__ import annotations

import datetime as dt


def anniversary(birth_date: dt.date, years: int) -> dt.date:
    """The date on which someone born on ``birth_date`` turns ``years``.

    A 29 February birthday falls on 1 March in common years (the convention most
    civil registries use for coming of age).
    """
    try:
        return birth_date.replace(year=birth_date.year + years)
    except ValueError:  # 29 Feb in a common year
        return dt.date(birth_date.year + years, 3, 1)


def completed_years(birth_date: dt.date, on: dt.date) -> int:
    """Whole years lived by ``on`` (0 before the first birthday)."""
    years = on.year - birth_date.year
    if anniversary(birth_date, years) > on:
        years -= 1
    return years


def exact_age_for_comparison(birth_date: dt.date, on: dt.date) -> float:
    """Completed years, plus a half if ``on`` is not a birthday.

    Comparisons against a whole number of years then read exactly: on the 75th
    birthday the age is 75 (not > 75); the day after it is more than 75.
    """
    years = completed_years(birth_date, on)
    return float(years) if anniversary(birth_date, years) == on else years + 0.5
