"""Progress for logs: how much is done, and the time left at the pace so far (torch-free).

    ProgressClock(total=13).done(4)   # -> '4/13, 12s, about 27s left'
"""

from __future__ import annotations

import math
import time


def format_duration(seconds: float) -> str:
    """12 -> '12s', 185 -> '3m05s', 7384 -> '2h03m'; not a number -> '?'."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def time_left(elapsed: float, done: int, remaining: int) -> float:
    """Seconds left for `remaining` more units at the mean pace of the `done` ones (nan before the first)."""
    return elapsed / done * remaining if done > 0 else float("nan")


class ProgressClock:
    """Counts `total` units of work from its creation (or from `start`, a time.monotonic())."""

    def __init__(self, total: int, *, start: float | None = None):
        self.total = total
        self.start = time.monotonic() if start is None else start

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def done(self, count: int) -> str:
        """'<count>/<total>, <elapsed>, about <left> left' after `count` units."""
        elapsed = self.elapsed()
        left = time_left(elapsed, count, self.total - count)
        return f"{count}/{self.total}, {format_duration(elapsed)}, about {format_duration(left)} left"
