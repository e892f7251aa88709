"""Claims: the links a run has made (or, in a dry run, planned) that the contact index does not
show yet, so later records of the run see them exactly as a real run would. One place for the
claim state in both targets (it sat in target-clientify's decider and target-factusol's finder).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from clientify_api import ContactIndex, custom_field_text, link_key


class Claims:
    """Client code <-> contact id, for the rest of the run (thread-safe: writers release)."""

    def __init__(self, link_field: str, index: Callable[[], ContactIndex]) -> None:
        self._link_field = link_field
        self._index = index
        self._lock = threading.Lock()
        self._contact_of: dict[str, object] = {}  # code -> contact id
        self._code_of: dict[object, str] = {}  # contact id -> code

    def claim(self, code: object, contact_id: object) -> bool:
        """Link client ``code`` to ``contact_id``; False when this run had already claimed it."""
        key = link_key(code)
        with self._lock:
            if key in self._contact_of:
                return False
            self._contact_of[key] = contact_id
            self._code_of[contact_id] = key
            return True

    def release(self, code: object) -> None:
        """A refused write: forget the claim (later batches decide afresh)."""
        key = link_key(code)
        with self._lock:
            contact_id = self._contact_of.pop(key, None)
            if contact_id is not None and self._code_of.get(contact_id) == key:
                del self._code_of[contact_id]

    def claimed(self, code: object) -> object | None:
        """The contact id this run linked to client ``code``, if any."""
        with self._lock:
            return self._contact_of.get(link_key(code))

    def contact_of(self, code: object) -> str | None:
        """The contact linked to client ``code``: claimed in this run, else in Clientify."""
        claimed = self.claimed(code)
        if claimed is not None:
            return str(claimed)
        linked = self._index().by_factusol_id(link_key(code))
        return str(linked[0].get("id")) if linked else None

    def client_of(self, contact: Mapping[str, Any]) -> str | None:
        """The client a contact is linked to: claimed in this run, else its link field (any
        text there counts as a link: such a contact is never adopted by matching)."""
        with self._lock:
            claimed = self._code_of.get(contact.get("id"))
        if claimed is not None:
            return claimed
        value = custom_field_text(contact, self._link_field)
        return None if value is None else link_key(value)
