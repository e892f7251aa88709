"""The creation marker: a line ``clientifyid <contact id>`` in F_CLI.OBSCLI.

FactuSOL returns no id on insert and has no external-id column (reference §7.4). The marker makes
creation idempotent across crashes: a client created for a contact whose write-back never
happened is found by its marker on the next run and linked instead of created again. OBSCLI (the
observations memo) is visible and harmless; MEMCLI is never used because the desktop pops it up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MARKER_WORD = "clientifyid"
# Only letters inside the LIKE pattern: the server's SQL dialect is unknown (Access or SQL
# Server), and `[`, `#` or `_` may be wildcards there. The exact line is checked in code.
MARKER_QUERY = f"SELECT CODCLI, OBSCLI FROM F_CLI WHERE OBSCLI LIKE '%{MARKER_WORD}%'"  # noqa: S608
_MARKER_RE = re.compile(rf"^[ \t]*{MARKER_WORD}[ \t]+([0-9]+)[ \t]*$", re.MULTILINE | re.IGNORECASE)


def marker_line(contact_id: int) -> str:
    """The OBSCLI line that marks a client as created for ``contact_id``."""
    return f"{MARKER_WORD} {int(contact_id)}"


def marker_ids(obscli: object) -> set[int]:
    """Contact ids whose marker line appears in an OBSCLI value."""
    if not isinstance(obscli, str):
        return set()
    return {int(m) for m in _MARKER_RE.findall(obscli.replace("\r\n", "\n").replace("\r", "\n"))}


def with_marker(obscli: object, contact_id: int) -> str:
    """OBSCLI with the marker line appended (unchanged when it is already there)."""
    text = obscli if isinstance(obscli, str) else ""
    if int(contact_id) in marker_ids(text):
        return text
    line = marker_line(contact_id)
    return f"{text.rstrip()}\r\n{line}" if text.strip() else line


def markers_by_contact(rows: Iterable[Mapping[str, Any]]) -> dict[int, list[int]]:
    """``{contact id: [CODCLI, …]}`` from rows of ``MARKER_QUERY``."""
    found: dict[int, set[int]] = {}
    for row in rows:
        try:
            code = int(row["CODCLI"])
        except (KeyError, TypeError, ValueError):
            continue
        for contact_id in marker_ids(row.get("OBSCLI")):
            found.setdefault(contact_id, set()).add(code)
    return {contact_id: sorted(codes) for contact_id, codes in found.items()}
