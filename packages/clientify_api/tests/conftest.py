from __future__ import annotations

import threading

import pytest
import responses
from clientify_api import ClientifyClient

API = "https://api.test/v1"
KEY = "sEcReT-KeY-0123456789"


class FakeClock:
    """Monotonic clock whose sleep advances time instantly and records every wait."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def make_client(clock: FakeClock):
    def factory(**kwargs) -> ClientifyClient:
        options = {
            "api_url": API,
            "rate_limit": None,
            "clock": clock,
            "sleep": clock.sleep,
            "wall_clock": lambda: 1_700_000_000.0,
            "jitter": False,
            "max_retries": 3,
        }
        options.update(kwargs)
        return ClientifyClient(KEY, **options)

    return factory


@pytest.fixture
def client(make_client) -> ClientifyClient:
    return make_client()
