"""Per-record log lines, capped: the first few of each kind at their level, the rest at DEBUG.

A run of 100,000 records wrote one line per rejection, conflict and creation, each relayed
by Meltano. What they say is kept elsewhere (the reject file, the plan file, the report's
counters, the progress lines), so after ``limit`` lines of one kind the run says once that the
next ones go to DEBUG (``--log-level=debug`` shows every one). Field warnings do not go
through here: no file but the log names the field left out.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

__all__ = ["RECORD_LINES", "RecordLines"]

RECORD_LINES = 20  # per kind and run, at the line's own level


class RecordLines:
    """Thread-safe (writer threads log too)."""

    def __init__(self, logger: logging.Logger, *, limit: int = RECORD_LINES) -> None:
        self._log = logger
        self.limit = limit
        self._lock = threading.Lock()
        self.seen: Counter[str] = Counter()

    def log(self, kind: str, level: int, msg: str, *args: object, where: str = "") -> None:
        """Log one record's line of ``kind``; ``where`` names what keeps them all (the note
        said once, when this kind goes to DEBUG)."""
        with self._lock:
            self.seen[kind] += 1
            n = self.seen[kind]
        if n <= self.limit or level <= logging.DEBUG:
            self._log.log(level, msg, *args)
            return
        if n == self.limit + 1:
            self._log.log(
                min(level, logging.WARNING),
                "more %s lines than %d: the next ones are logged at DEBUG level only%s",
                kind,
                self.limit,
                f" ({where})" if where else "",
            )
        self._log.debug(msg, *args)
