"""Writes: a batch's writes start as plans are decided, one group at a time, in order."""

from __future__ import annotations

import threading

import pytest
from target_runtime.plan import Plan
from target_runtime.writes import Writes


class GroupPlan(Plan):
    def __init__(self, key: int, group: str) -> None:
        super().__init__(record={}, key=key, action="update")
        self._group = group

    @property
    def group(self) -> object:
        return self._group


def test_a_write_starts_before_the_batch_is_fully_decided() -> None:
    first_written = threading.Event()

    def write(plan: Plan) -> None:
        if plan.key == 1:
            first_written.set()

    with Writes(write, workers=2, name="t") as writes:
        writes.submit(GroupPlan(1, "a"))
        # deciding the next record: the first one's write is already under way
        assert first_written.wait(timeout=10)
        writes.submit(GroupPlan(2, "b"))


def test_plans_of_one_group_run_in_order_never_two_at_once() -> None:
    order: list[int] = []
    running: set[str] = set()
    overlaps: list[str] = []
    lock = threading.Lock()
    gate = threading.Event()

    def write(plan: Plan) -> None:
        group = str(plan.group)
        with lock:
            if group in running:
                overlaps.append(group)
            running.add(group)
        if plan.key == 0:
            gate.wait(timeout=10)  # hold the group's first write while the others arrive
        with lock:
            running.discard(group)
            if group == "same":
                order.append(plan.key)

    with Writes(write, workers=4, name="t") as writes:
        for key in range(5):
            writes.submit(GroupPlan(key, "same"))
        writes.submit(GroupPlan(99, "other"))
        gate.set()
    assert order == [0, 1, 2, 3, 4]
    assert overlaps == []


def test_a_failed_write_stops_the_batch_and_is_raised_when_it_ends() -> None:
    written: list[int] = []

    def write(plan: Plan) -> None:
        if plan.key == 1:
            raise RuntimeError("retries exhausted")
        written.append(plan.key)

    writes = Writes(write, workers=1, name="t")  # one thread: plan 2 starts after 1 failed
    writes.submit(GroupPlan(1, "a"))
    writes.submit(GroupPlan(2, "b"))
    with pytest.raises(RuntimeError, match="retries exhausted"):
        writes.__exit__(None, None, None)
    assert writes.failed
    assert written == []  # not started: it stays for the next run
