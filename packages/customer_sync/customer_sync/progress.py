"""Progress lines for long runs: records done (of the total when known), rate, time left."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

__all__ = ["ProgressMeter"]


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 90:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class ProgressMeter:
    """Counts records as they are done and logs one line every ``interval`` seconds.

    Thread-safe (writer threads call :meth:`advance`). ``clock`` is injectable so tests never
    wait on the wall clock. Logs nothing on runs shorter than one interval. ``counts`` (e.g.
    the run's created/updated/rejected so far) is appended to each line.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        noun: str = "records",
        total: int | None = None,
        total_is_bound: bool = False,
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        counts: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._log = logger
        self.noun = noun
        self.total = total
        self.total_is_bound = total_is_bound  # ``total`` is an upper bound, not the count
        self.interval = interval
        self._clock = clock
        self._counts = counts  # outcomes so far (created, rejected, ...), named in each line
        self._lock = threading.Lock()
        self._started = clock()
        self._last = self._started
        self.done = 0
        self.lines = 0

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self.done += count
            now = self._clock()
            if now - self._last < self.interval:
                return
            self._last = now
            line = self.line(now)
            self.lines += 1
        self._log.info("%s", line)

    def line(self, now: float | None = None) -> str:
        elapsed = max((self._clock() if now is None else now) - self._started, 1e-9)
        rate = self.done / elapsed
        text = f"progress: {self.done:,} {self.noun}"
        if self.total:
            share = min(self.done / self.total, 1.0)
            of = "of at most" if self.total_is_bound else "of"
            text = f"progress: {self.done:,} {of} {self.total:,} {self.noun} ({share:.0%})"
        text += f", {rate:,.1f}/s"
        if self.total and rate > 0 and self.done < self.total:
            about = "at most" if self.total_is_bound else "about"
            text += f", {about} {_duration((self.total - self.done) / rate)} left"
        counts = self._counts() if self._counts is not None else {}
        if counts:
            text += "; " + ", ".join(f"{n:,} {name}" for name, n in counts.items())
        return text
