"""Which values can identify a customer on the other system, and which only look like they can.

A link code is the only certain identity. A NIF or an e-mail can suggest a match on the first
run, but real books are full of values that identify nobody: placeholder NIFs typed to get past
a required field, and addresses several customers share (a gestoría's, a company's ``info@``).
This module answers the first question for one value; whether a value is shared is a count over
a whole side, which the matching rule (:mod:`customer_sync.matching`) takes as an input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .normalize import NO_NIF_TEXTS, InvalidValue, check_nif, clean_text, normalize_email

__all__ = [
    "IDENTITY_KEYS",
    "IDENTITY_VERSION",
    "IdentityKeys",
    "email_identity",
    "is_placeholder_nif",
    "link_code",
    "nif_identity",
    "parse_link_code",
]

# CODCLI is an Access "Entero largo" (reference §7.1): a 32-bit signed integer.
MAX_CODE = 2**31 - 1
_NIF_JUNK = re.compile(r"[\s.\-_]+")
# The textbook example numbers, found on real invoices as "any valid NIF".
_SEQUENCES = ("0123456789", "9876543210", "123456789", "987654321")


def parse_link_code(value: object) -> int:
    """The client code a link value names: ``" 10001 "``, ``"0010001"`` and ``10001`` are the
    same code. Raises InvalidValue for anything that is not a positive whole number."""
    if isinstance(value, bool):
        raise InvalidValue("factusol_id is not an integer")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        number = value
    else:
        # spaces around it are typing; anything else inside (a NUL, a dot) is not a code
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()):
            raise InvalidValue("factusol_id is not an integer")
        number = int(text)
    if number <= 0:
        raise InvalidValue("factusol_id is not a positive integer")
    if number > MAX_CODE:
        raise InvalidValue("factusol_id is beyond FactuSOL's codes (CODCLI is a 32-bit integer)")
    return number


def link_code(value: object) -> int | None:
    """:func:`parse_link_code`, or None for an empty or unusable value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return parse_link_code(value)
    except InvalidValue:
        return None


def is_placeholder_nif(value: object) -> bool:
    """True for values that stand for "no NIF": ``SIN NIF``, ``N/A``, ``00000000T``,
    ``11111111H``, ``B00000000``, ``12345678Z`` and the like (valid checksums included)."""
    if not isinstance(value, str):
        return True
    compact = _NIF_JUNK.sub("", clean_text(value)).upper()
    if compact.startswith("ES") and len(compact) == 11:
        compact = compact[2:]
    if not compact or compact.replace("/", "") in NO_NIF_TEXTS:
        return True
    digits = "".join(ch for ch in compact if ch.isdigit())
    if len(digits) < 7:
        return not digits and len(compact) < 8  # letters only: a word, not a number
    body = digits[:8] if len(digits) >= 8 else digits
    if len(set(body)) == 1:
        return True
    return any(body in sequence for sequence in _SEQUENCES)


def nif_identity(value: object) -> str | None:
    """The compact NIF when it can identify one customer; None when empty, a placeholder or
    invalid (an invalid NIF is reported by the mapping, never used to match)."""
    if not isinstance(value, str) or is_placeholder_nif(value):
        return None
    try:
        nif = check_nif(value)
    except InvalidValue:
        return None
    # judged again in its compact form: a DNI/NIE typed without its leading zeros can read as a
    # placeholder only once padded ("X123456S" -> "X0123456S"), and an identity must be one
    # (nif_identity of an identity is itself, so an index keyed by it finds it)
    return nif if nif and not is_placeholder_nif(nif) else None


def email_identity(value: object) -> str | None:
    """The normalized address when it is one Clientify accepts; None otherwise."""
    if not isinstance(value, str):
        return None
    return normalize_email(value) or None


# Bump when nif_identity or email_identity give a value another key: a contact index kept
# between runs (clientify_api) stores it and is rebuilt once when it changes.
IDENTITY_VERSION = "1"


@dataclass(frozen=True)
class IdentityKeys:
    """The identity functions as one value, for an index that keys records the way matching
    looks them up (``clientify_api.ContactIndex(keys=IDENTITY_KEYS)``)."""

    version: str
    nif: Callable[[object], str | None]
    email: Callable[[object], str | None]


IDENTITY_KEYS = IdentityKeys(IDENTITY_VERSION, nif_identity, email_identity)
