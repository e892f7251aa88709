"""Errors that stop a target-factusol run."""

from __future__ import annotations


class FatalRunError(Exception):
    """Stops the run: one clear line, exit 1, no STATE for records not yet written.

    Raised for credentials, systemic API failures (after the clients' retries), an unknown
    stream, and a reject ratio above ``max_reject_percent``. Never carries a secret or a record.
    """
