"""A thread-safe token-bucket rate limiter with an injectable clock and sleep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Token bucket: on average at most ``rate`` acquisitions per second, bursts of ``burst``.

    Each caller reserves its slot under the lock and sleeps outside it, so threads queue in
    order without holding the lock while they wait. ``rate`` of ``None`` or ``<= 0`` disables
    limiting (useful for tests and for a sandbox).

    The bucket starts empty (``start_full=False``): N requests from a fresh start take at least
    N / rate seconds, so restarting a run in a loop cannot exceed the rate either.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        start_full: bool = False,
    ) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = float(rate) if rate and rate > 0 else None
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst if start_full else 0.0
        self._last = clock()
        self._hold_until = float("-inf")

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate!r}, burst={self.burst!r})"

    def acquire(self) -> float:
        """Wait until a request may be sent; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._hold_until - now)
            if self.rate is not None:
                # Refill from the moment the hold ends, so a 429 pause is not followed by a burst.
                start = max(now, self._hold_until)
                self._tokens = min(self.burst, self._tokens + (start - self._last) * self.rate)
                self._last = start
                self._tokens -= 1.0
                if self._tokens < 0:
                    wait += -self._tokens / self.rate
        if wait > 0:
            self._sleep(wait)
        return wait

    def hold(self, seconds: float) -> None:
        """Make every caller wait ``seconds`` from now (after a 429 all threads back off)."""
        if seconds <= 0:
            return
        with self._lock:
            self._hold_until = max(self._hold_until, self._clock() + seconds)
