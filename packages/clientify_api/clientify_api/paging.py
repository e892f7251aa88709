"""Reading and writing in pages: batches of items, and a listing's pages read ahead."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

from clientify_api.errors import ClientifyError

T = TypeVar("T")


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter): ``itertools.batched`` of 3.12."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def checked_page(data: Any, url: str) -> dict[str, Any]:
    """A listing's page, or ClientifyError when the answer has no ``results`` list."""
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ClientifyError(
            f"GET {urlsplit(url).path}: unexpected answer (no results list)",
            method="GET",
            path=urlsplit(url).path,
        )
    return data


def pages_after(first: dict[str, Any], next_query: list[tuple[str, str]]) -> range | None:
    """The page numbers after ``first`` up to the last one its ``count`` announces, from the
    ``page`` of its ``next`` link (``next_query``); None when the listing does not say, or
    when fewer than two pages are left (reading ahead would gain nothing)."""
    count, size = first.get("count"), len(first["results"])
    numbers = [v for k, v in next_query if k == "page"]
    if (
        not isinstance(count, int)
        or isinstance(count, bool)
        or size == 0
        or len(numbers) != 1
        or not numbers[0].isdigit()
    ):
        return None
    pages = range(int(numbers[0]), -(-count // size) + 1)  # ceil(count / size): the last page
    return pages if len(pages) >= 2 else None


class PagesAhead:
    """Pages ``numbers`` fetched ``workers`` at a time, yielded in order by :attr:`pages`.

    ``fetch(number)`` returns a page's answer, or None for 404 "Invalid page." (the listing
    shrank meanwhile: the pages end there). After them, ``next_url`` is the last page's
    ``next`` (the listing grew meanwhile), or None.
    """

    def __init__(
        self, fetch: Callable[[int], Any], numbers: range, *, workers: int, url: str
    ) -> None:
        self._answers = self._fetch_all(fetch, numbers, workers)
        self.url = url
        self.next_url: str | None = None

    @property
    def pages(self) -> Iterator[dict[str, Any]]:
        try:
            for data in self._answers:
                if data is None:
                    self.next_url = None
                    return
                page = checked_page(data, self.url)
                yield page
                next_url = page.get("next")
                self.next_url = next_url if isinstance(next_url, str) and next_url else None
        finally:
            self._answers.close()  # no request left in flight

    @staticmethod
    def _fetch_all(fetch: Callable[[int], Any], numbers: range, workers: int) -> Generator[Any]:
        todo = iter(numbers)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clientify-page") as pool:
            pending = deque(pool.submit(fetch, n) for n in itertools.islice(todo, workers))
            try:
                while pending:
                    yield pending.popleft().result()
                    for number in itertools.islice(todo, 1):
                        pending.append(pool.submit(fetch, number))
            finally:
                for future in pending:  # stopped early (an error, the reader done): no more
                    future.cancel()
