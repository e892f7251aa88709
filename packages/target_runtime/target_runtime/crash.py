"""The one crash seam of the targets, for the crash-recovery tests.

A writer calls ``point("after_client_update", key)`` where a crash would leave its work half
done; nothing happens unless a test armed that point. Armed points are named, comma separated,
in the environment variable ``FCSYNC_TEST_CRASH``::

    FCSYNC_TEST_CRASH=after_client_update meltano run ...

The e2e tests (tests/e2e) still arm them with the older per-point variables, read here too and
only here (``LEGACY``). An armed point kills the process with SIGKILL, as a power cut would, except
``after_client_insert``, which exits at once with status 70 (no clean-up either).
"""

from __future__ import annotations

import logging
import os
import signal

ENV = "FCSYNC_TEST_CRASH"

POINTS = {
    "contact_write_partial": "target-clientify: after the first of a contact's several calls",
    "after_contact_write": "target-clientify: after a contact's writes, before the ledger",
    "after_client_update": "target-factusol: after a client update, before the ledger",
    "after_client_insert": "target-factusol: after a client insert, before the link write-back",
}

# older variable -> {its value: point} ("*": any non-empty value)
LEGACY: dict[str, dict[str, str]] = {
    "FCSYNC_TEST_CRASH_AFTER_CONTACT_WRITE": {
        "partial": "contact_write_partial",
        "written": "after_contact_write",
    },
    "FCSYNC_TEST_CRASH_AFTER_UPDATE": {"*": "after_client_update"},
    "FCSYNC_TEST_CRASH_AFTER_INSERT": {"*": "after_client_insert"},
}

logger = logging.getLogger(__name__)


def armed() -> set[str]:
    """The points armed in this process's environment."""
    found = {name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip()}
    for variable, values in LEGACY.items():
        value = os.environ.get(variable, "").strip()
        if value:
            point = values.get(value) or values.get("*")
            if point is not None:
                found.add(point)
    return found


def point(name: str, key: object = None) -> None:
    """Crash here when a test armed ``name``; otherwise do nothing."""
    if name not in POINTS:
        raise ValueError(f"unknown crash point {name!r}; known: {sorted(POINTS)}")
    if name not in armed():
        return
    logger.error("test crash point %s reached (key %s): stopping the process", name, key)
    if name == "after_client_insert":
        os._exit(70)
    else:
        os.kill(os.getpid(), signal.SIGKILL)
