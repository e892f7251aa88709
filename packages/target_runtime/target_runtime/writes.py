"""A batch's writes on a thread pool, started as the plans are decided.

Writing while the rest of the batch is still being decided keeps the API busy through the
decisions: with every write waiting for the whole batch's decisions, Clientify sat idle for
the decision time of each batch (a fifth of the initial f2c at 20 ms per call). Plans of one
``group`` run in one task, in the order they arrived, never two at once.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from target_runtime.plan import Plan


class Writes:
    """``submit`` plans in record order; :meth:`wait` (or leaving the ``with`` block) waits
    for every write.

    After a write raised (a systemic error: auth, retries exhausted) the plans not started are
    dropped, so they stay for the next run; the writes in flight finish, so no write is left
    without its bookkeeping. The error is raised again when the block ends.
    """

    def __init__(self, write: Callable[[Plan], None], *, workers: int, name: str) -> None:
        self._write = write
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-writer")
        self._queues: dict[object, deque[Plan]] = {}
        self._lock = threading.Lock()
        self._futures: list[Future[None]] = []
        self._error: BaseException | None = None

    @property
    def failed(self) -> bool:
        """A write raised: decide no more (what is not planned is not written either)."""
        return self._error is not None

    def submit(self, plan: Plan) -> None:
        with self._lock:
            if self._error is not None:
                return
            queue = self._queues.get(plan.group)
            if queue is not None:  # a task of this group is queued or running: it takes it
                queue.append(plan)
                return
            self._queues[plan.group] = deque([plan])
        self._futures.append(self._pool.submit(self._drain, plan.group))

    def _drain(self, group: object) -> None:
        while True:
            with self._lock:
                queue = self._queues[group]
                if not queue or self._error is not None:
                    del self._queues[group]
                    return
                plan = queue.popleft()
            try:
                self._write(plan)
            except BaseException as exc:
                with self._lock:
                    self._error = self._error or exc
                raise

    def __enter__(self) -> Writes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An interrupt or an error while deciding: cancel what has not started, let the
        # writes in flight finish.
        self.wait(cancel=exc is not None)

    def wait(self, *, cancel: bool = False) -> None:
        """Wait for every write; ``cancel``: drop the plans not started first. Raises a
        failed write's error (unless cancelled: the caller has its own to raise)."""
        self._pool.shutdown(wait=True, cancel_futures=cancel or self.failed)
        if not cancel and self._error is not None:
            raise self._error
