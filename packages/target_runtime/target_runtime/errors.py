"""The one error that stops a target run."""

from __future__ import annotations


class TargetStop(Exception):
    """Stops the run: one clear line, exit 1, no STATE for records not yet written.

    Raised for bad settings, credentials, systemic API failures (after the clients' retries), an
    unknown stream, and a reject ratio above ``max_reject_percent``. Never carries a secret or a
    record.
    """
