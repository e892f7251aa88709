"""Feed corpus cases to a target in chunks; isolate the cases that crash it.

A chunk is one target run (one `listen`). When a chunk crashes, its cases are run again one per
run, so a single crashing case is named and every other case still gets an outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rel_harness import Feed, feed_target, singer_lines

CHUNK = 60


@dataclass
class CorpusRun:
    crashed: dict[str, str] = field(default_factory=dict)  # case -> exception text
    logs: list[Any] = field(default_factory=list)
    runs: int = 0


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def run_corpus(
    target_cls: type,
    config: dict[str, Any],
    stream: str,
    cases: list[dict[str, Any]],
    record_of: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    chunk: int = CHUNK,
) -> CorpusRun:
    result = CorpusRun()

    def once(group: list[dict[str, Any]]) -> Feed:
        result.runs += 1
        feed = feed_target(target_cls, config, singer_lines(stream, [record_of(c) for c in group]))
        result.logs.extend(feed.logs)
        return feed

    for start in range(0, len(cases), chunk):
        group = cases[start : start + chunk]
        feed = once(group)
        if feed.error is None:
            continue
        for case in group:
            single = once([case])
            if single.error is not None:
                result.crashed[case["case"]] = _describe(single.error)
    return result
