"""Names shared by the sink and the run (kept apart so neither imports the other)."""

from __future__ import annotations

from clientify_api import ClientifyAuthError, ClientifyCustomFieldError, ClientifyRetryError

INPUT_STREAM = "clients"
MATCH_KEYS = ("nif", "email")
DEFAULT_REGION = "ES"
# Errors after which no further record can succeed: stop the run, emit no STATE.
FATAL_ERRORS = (ClientifyAuthError, ClientifyRetryError, ClientifyCustomFieldError)
# Set by ClientsSink on a record, popped by the run (never written anywhere): the key
# properties the record arrived without (it is rejected), and the date-time fields whose value
# could not be parsed (kept as received, read as unknown).
MISSING_KEYS = "__target_clientify_missing_keys__"
BAD_DATES = "__target_clientify_bad_dates__"


class TargetClientifyError(Exception):
    """Stops the run with one line (exit 1) and no STATE: setup, auth, systemic failures."""
