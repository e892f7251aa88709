"""Errors raised by the Clientify client.

Every message names the HTTP method, the path (never the query string, which can hold e-mails)
and the status, plus the API's own error text. Never the body we sent, never the API key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ClientifyError(Exception):
    """Base class of every error raised by :mod:`clientify_api`."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status


class ClientifyAuthError(ClientifyError):
    """The API key is missing, wrong, or has no API access (401, 403, 404 "Api key not provided").

    Fatal: retrying cannot help, so the run should stop.
    """


class ClientifyNotFoundError(ClientifyError):
    """404 for an object (contact, e-mail, ...) that does not exist, or an unknown route."""


class ClientifyValidationError(ClientifyError):
    """A 4xx the API gave for the data we sent (usually 400 with DRF field messages).

    ``messages`` is always a dict ``{field: [message, ...]}``: a list body is stored under
    ``non_field_errors`` and a plain string under ``detail``, so a target can log one reason
    and reject just that record.
    """

    def __init__(
        self,
        status: int,
        messages: Mapping[str, Any] | list[Any] | str | None,
        *,
        method: str = "",
        path: str = "",
    ) -> None:
        self.messages: dict[str, list[str]] = normalize_messages(messages)
        prefix = f"{method} {path} -> {status}".strip()
        super().__init__(
            f"{prefix}: {format_messages(self.messages)}",
            method=method,
            path=path,
            status=status,
        )


class ClientifyCustomFieldError(ClientifyError):
    """The custom field definition could not be created: the user must create it by hand.

    Deliberately not a :class:`ClientifyValidationError`: it is a setup problem that must stop
    the run, not a bad record to skip.
    """


class ClientifyRetryError(ClientifyError):
    """A transient failure (429, 5xx, timeout, connection error) outlived the retries.

    ``maybe_applied`` is true when a non-idempotent write (POST) may have reached the server
    (5xx or read timeout): look the object up before sending it again, or it may be duplicated.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
        attempts: int = 0,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(message, method=method, path=path, status=status)
        self.attempts = attempts
        self.maybe_applied = maybe_applied


def normalize_messages(
    messages: Mapping[str, Any] | list[Any] | str | None,
) -> dict[str, list[str]]:
    """Turn a DRF error body (dict, list or string) into ``{field: [message, ...]}``."""
    if messages is None:
        return {}
    if isinstance(messages, str):
        return {"detail": [messages]} if messages else {}
    if isinstance(messages, list):
        return {"non_field_errors": [_text(m) for m in messages]}
    out: dict[str, list[str]] = {}
    for key, value in messages.items():
        if isinstance(value, list):
            out[str(key)] = [_text(v) for v in value]
        else:
            out[str(key)] = [_text(value)]
    return out


def format_messages(messages: Mapping[str, list[str]]) -> str:
    """One line: ``field: message; other: message``."""
    if not messages:
        return "no error details in the response"
    return "; ".join(f"{field}: {' '.join(texts)}" for field, texts in messages.items())


def _text(value: Any) -> str:
    # Nested serializer errors come as dicts ({"emails": [{"email": ["..."]}]}): flatten them.
    if isinstance(value, dict):
        return format_messages(normalize_messages(value))
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return str(value)
