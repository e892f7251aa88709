"""Exception hierarchy of the FactuSOL client.

Messages name the FactuSOL ``respuesta`` code and the route, never the body that was sent, a
password or a token.
"""

from __future__ import annotations


class FactusolError(Exception):
    """Any failure talking to the FactuSOL API.

    Attributes:
        code: The API's ``respuesta`` code (``"BDEscribirRegistroError"``…), ``"HTTP <status>"``
            for a transport-level status, or ``None``.
        route: The API route, e.g. ``"/admin/EscribirRegistro"``, or ``None``.
    """

    def __init__(self, message: str, *, code: str | None = None, route: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.route = route


class FactusolAuthError(FactusolError):
    """Login failed, or a freshly issued token was rejected."""


class FactusolTransientError(FactusolError):
    """A transient failure (``KO``, 429, 5xx, timeout, connection) outlived every retry."""


class FactusolRecordError(FactusolError):
    """A write was refused (``BDEscribirRegistroError``, ``BDActualizarRegistroError``…)."""


class FactusolRecordExistsError(FactusolRecordError):
    """Insert of a primary key that already exists (``BDExisteRegistro``, reference §5.4)."""


class FactusolDatabaseMissingError(FactusolError):
    """No database for that ``ejercicio`` (``BDNoExiste``, reference §6)."""
