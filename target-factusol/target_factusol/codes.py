"""CODCLI allocation: the API never assigns a client code (reference §5.4), so we do, as MAX+1."""

from __future__ import annotations

import threading
from collections.abc import Callable


class CodeAllocator:
    """The next free CODCLI: MAX read once per run, then counted up under a lock, so planned
    creations and concurrent inserts after a collision never take the same code."""

    def __init__(self, read_max: Callable[[], int]) -> None:
        self._read_max = read_max
        self._lock = threading.Lock()
        self._next: int | None = None
        self.reserved: set[int] = set()  # codes of planned recreations: never handed out

    def next(self) -> int:
        with self._lock:
            if self._next is None:
                self._next = self._read_max() + 1
            code = self._next
            while code in self.reserved:
                code += 1
            self._next = code + 1
            return code
