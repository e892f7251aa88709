"""Errors raised by the Clientify client.

Every message names the HTTP method, the path (never the query string, which can hold e-mails)
and the status, plus the API's own error text. Never the body we sent, never the API key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import requests


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


class ClientifyConflictError(ClientifyValidationError):
    """The API refused a create because a unique value is already taken: a 409 (a duplicate
    ``taxpayer_identification_number``, reported for some accounts), or a 400 whose only
    message for a field says it "already exists" (DRF's unique validator).

    ``field`` names the contact field at fault (``"taxpayer_identification_number"``) when the
    answer tells, else None. A target may send the create again without that field. Being a
    :class:`ClientifyValidationError`, code that rejects the record on validation errors keeps
    doing so.
    """

    def __init__(
        self,
        status: int,
        messages: Mapping[str, Any] | list[Any] | str | None,
        *,
        field: str | None,
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(status, messages, method=method, path=path)
        self.field = field


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


def raise_for_client_error(
    response: requests.Response,
    method: str,
    path: str,
    *,
    end_on_invalid_page: bool,
) -> None:
    """Raise the error a 4xx answer (not 429) means; returns only for 404 "Invalid page."
    when ``end_on_invalid_page`` (the end of a listing)."""
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    detail_text = str(detail).strip() if detail is not None else ""
    where = f"{method} {path} -> {status}"
    if status == 401:
        raise ClientifyAuthError(
            f"Clientify rejected the API key ({where}"
            + (f": {detail_text}" if detail_text else "")
            + "). Check api_key.",
            method=method,
            path=path,
            status=status,
        )
    if status == 403:
        raise ClientifyAuthError(
            f"Clientify refused access ({where}"
            + (f": {detail_text}" if detail_text else "")
            + "): the API key has no API access (API add-on or an admin user is needed).",
            method=method,
            path=path,
            status=status,
        )
    if status == 404:
        folded = detail_text.casefold()
        if "api key not provided" in folded:
            # Clientify answers a missing Authorization header with 404, not 401.
            raise ClientifyAuthError(
                f"Clientify did not receive the API key ({where}: {detail_text})",
                method=method,
                path=path,
                status=status,
            )
        if end_on_invalid_page and folded.startswith("invalid page"):
            return None
        hint = detail_text or (
            "not a JSON answer: unknown route, check api_url" if body is None else "Not found"
        )
        raise ClientifyNotFoundError(f"{where}: {hint}", method=method, path=path, status=status)
    if body is None:
        text = response.text.strip()
        # An HTML error page says nothing useful and may be long: keep only short text.
        body = text if text and len(text) <= 300 and not text.startswith("<") else None
    conflict = _conflict_field(status, body)
    if conflict is not None:
        raise ClientifyConflictError(status, body, field=conflict or None, method=method, path=path)
    raise ClientifyValidationError(status, body, method=method, path=path)


# A refusal naming the contact's NIF field (a 409's ``detail`` names no field key).
_TIN_WORDS = re.compile(r"taxpayer[ _]identification[ _]number|\b(?:tin|nif|cif)\b")


def _conflict_field(status: int, body: Any) -> str | None:
    """For a duplicate-value refusal, the field at fault ("" when unknown); None otherwise."""
    messages = normalize_messages(body) if isinstance(body, (dict, list, str)) else {}
    if status == 409:
        for key in messages:
            if key not in ("detail", "non_field_errors"):
                return key
        text = " ".join(" ".join(texts) for texts in messages.values()).casefold()
        if _TIN_WORDS.search(text):
            return "taxpayer_identification_number"
        return ""
    if status == 400 and len(messages) == 1:
        key, texts = next(iter(messages.items()))
        if key not in ("detail", "non_field_errors") and all(
            "already exists" in t.casefold() for t in texts
        ):
            return key
    return None
