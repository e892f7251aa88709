"""RateLimiter: holds its rate on a fake clock, thread-safe slot reservation, holds."""

from __future__ import annotations

import threading

import pytest
import responses
from clientify_api import ClientifyClient, RateLimiter

API = "https://api.test/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds


@pytest.mark.parametrize(("rate", "n"), [(5.0, 20), (0.5, 4), (100.0, 250)])
def test_n_requests_take_at_least_n_over_rate(rate, n):
    clock = Clock()
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    start = clock()
    for _ in range(n):
        limiter.acquire()
    assert clock() - start >= n / rate - 1e-9


def test_idle_time_refills_only_up_to_burst():
    clock = Clock()
    limiter = RateLimiter(2.0, burst=3, clock=clock, sleep=clock.sleep)
    clock.now += 100  # long idle
    for _ in range(3):
        assert limiter.acquire() == 0
    assert limiter.acquire() == pytest.approx(0.5)


def test_no_limit_when_rate_is_none():
    clock = Clock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        limiter.acquire()
    assert clock.sleeps == []


def test_threads_get_distinct_slots():
    # Frozen clock: every caller reserves the next free slot, so the waits are 1/r, 2/r, ...
    waits: list[float] = []
    lock = threading.Lock()
    limiter = RateLimiter(10.0, clock=lambda: 0.0, sleep=lambda s: None)

    def worker() -> None:
        for _ in range(25):
            wait = limiter.acquire()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(round(w, 6) for w in waits) == [round(k / 10.0, 6) for k in range(1, 201)]


def test_hold_delays_everyone():
    clock = Clock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    limiter.hold(3)
    assert limiter.acquire() == pytest.approx(3)
    assert limiter.acquire() == 0


@responses.activate
def test_client_requests_go_through_the_limiter():
    clock = Clock()
    client = ClientifyClient("k", API, rate_limit=4.0, clock=clock, sleep=clock.sleep, jitter=False)
    responses.get(f"{API}/contacts/1/", json={"id": 1})
    for _ in range(12):
        client.get_contact(1)
    assert clock() >= 12 / 4.0
    assert client.calls["read"] == 12
