"""What the sink marks on a record it could not validate; the run reads and removes the marks.

Kept apart from both the sink and the run so neither imports the other.
"""

from __future__ import annotations

CONTACTS_STREAM = "contacts"
# Set on a record that failed schema validation or date parsing, or arrived without its key
# property; the batch rejects it.
INVALID_KEY = "__target_factusol_invalid__"
# The key properties a record arrived without (filled with None for the SDK's key check, taken
# out again before the record is rejected, so the reject file keeps it as it was sent).
MISSING_KEYS = "__target_factusol_missing_keys__"
