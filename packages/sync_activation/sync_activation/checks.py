"""The checks, one line each, in the order a person fixes things.

Nothing is written unless every other check passed: only then is the missing link field
created (as the targets would at their first record). Each API error is caught and turned
into a line; a secret never reaches one (the API clients never put one in a message, and every
line is scrubbed of the secrets once more before it is printed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import requests
from clientify_api import (
    ClientifyAuthError,
    ClientifyClient,
    ClientifyCustomFieldError,
    ClientifyError,
)
from factusol_api import (
    FactusolAuthError,
    FactusolClient,
    FactusolCredentials,
    FactusolDatabaseMissingError,
    FactusolError,
    check_api_url,
)

from .settings import Settings

__all__ = ["FAIL", "OK", "SKIP", "WARN", "Line", "Report", "run_checks"]

OK, FAIL, WARN, SKIP = "✓", "✗", "!", "–"
TEXT_FIELD_TYPES = (3, "3", "text", None)


@dataclass(frozen=True)
class Line:
    mark: str
    what: str
    detail: str

    def render(self, secrets: list[str]) -> str:
        text = f"{self.mark} {self.what}: {self.detail}"
        for secret in secrets:
            if len(secret) >= 4:  # shorter ones cannot be told apart from ordinary words
                text = text.replace(secret, "***")
        return text


@dataclass
class Report:
    lines: list[Line]
    created_field: bool = False

    @property
    def ok(self) -> bool:
        """A sync can run: no check failed (warnings are fine)."""
        return all(line.mark != FAIL for line in self.lines)


def run_checks(
    settings: Settings,
    *,
    emit: Callable[[Line], None] = lambda line: None,
    factusol_factory: Callable[[Settings], FactusolClient] | None = None,
    clientify_factory: Callable[[Settings], ClientifyClient] | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> Report:
    """Run every check, calling ``emit`` with each line as soon as it is known."""
    report = Report([])

    def add(mark: str, what: str, detail: str) -> None:
        line = Line(mark, what, detail)
        report.lines.append(line)
        emit(line)

    for disagreement in settings.disagreements:
        # A plugin that would run with other credentials than the ones checked below.
        add(
            FAIL,
            "Ajustes de los plugins · plugin settings",
            f"{disagreement}: quite esa variable o use la compartida · unset that variable "
            "or use the shared one",
        )
    fs_ready = _factusol_settings(settings, add)
    cl_ready = _clientify_settings(settings, add)
    if fs_ready:
        make = factusol_factory or _factusol_client
        _factusol(settings, make, add, now or (lambda: dt.datetime.now(ZoneInfo("Europe/Madrid"))))
    else:
        add(
            SKIP,
            "FactuSOL acceso · login",
            "no probado: faltan datos · not tried: settings missing",
        )
    if cl_ready:
        make_cl = clientify_factory or _clientify_client
        report.created_field = _clientify(settings, make_cl, add, report)
    else:
        add(SKIP, "Clientify acceso · login", "no probado: falta la API key · not tried: no key")
    return report


# ---------------------------------------------------------------------------- settings


def _factusol_settings(settings: Settings, add: Callable[[str, str, str], None]) -> bool:
    what = "FactuSOL credenciales · credentials"
    names = {
        "codigo_fabricante": "FACTUSOL_CODIGO_FABRICANTE",
        "codigo_cliente": "FACTUSOL_CODIGO_CLIENTE",
        "base_datos": "FACTUSOL_BASE_DATOS",
        "password": "FACTUSOL_PASSWORD",
    }
    missing = [var for name, var in names.items() if not getattr(settings, name).strip()]
    if missing:
        add(FAIL, what, f"faltan · missing: {', '.join(missing)} (en .env · in .env)")
        return False
    try:
        check_api_url(settings.factusol_api_url)
    except ValueError as exc:
        add(FAIL, what, f"api_url no válida · invalid: {exc}")
        return False
    add(
        OK,
        what,
        f"fabricante {settings.codigo_fabricante}, cliente {settings.codigo_cliente}, base de "
        f"datos {settings.base_datos}, contraseña presente · password set "
        f"({settings.factusol_api_url})",
    )
    return True


def _clientify_settings(settings: Settings, add: Callable[[str, str, str], None]) -> bool:
    what = "Clientify credenciales · credentials"
    if not settings.clientify_api_key.strip():
        add(FAIL, what, "falta · missing: CLIENTIFY_API_KEY (en .env · in .env)")
        return False
    add(OK, what, f"API key presente · API key set ({settings.clientify_api_url})")
    return True


# ---------------------------------------------------------------------------- FactuSOL


def _factusol_client(settings: Settings) -> FactusolClient:
    creds = FactusolCredentials(
        codigo_fabricante=settings.codigo_fabricante,
        codigo_cliente=settings.codigo_cliente,
        base_datos=settings.base_datos,
        password=settings.password,
    )
    return FactusolClient(
        creds,
        api_url=settings.factusol_api_url,
        ejercicio=settings.ejercicio,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
    )


def _factusol(
    settings: Settings,
    make: Callable[[Settings], FactusolClient],
    add: Callable[[str, str, str], None],
    now: Callable[[], dt.datetime],
) -> None:
    login, year_what, count_what = (
        "FactuSOL acceso · login",
        "FactuSOL ejercicio · year",
        "FactuSOL clientes · clients",
    )
    try:
        client = make(settings)
    except ValueError as exc:  # a bad ejercicio setting ("20x5")
        add(FAIL, year_what, f"{exc}")
        return
    with client:
        try:
            year = client.ejercicio  # auto: logs in and probes the years
            count = _count_clients(client)  # an explicit year: its first call
        except FactusolAuthError:
            add(
                FAIL,
                login,
                f"FactuSOL rechaza estas credenciales (base de datos {settings.base_datos}): "
                "revise FACTUSOL_CODIGO_* y FACTUSOL_PASSWORD · FactuSOL refused these "
                "credentials",
            )
            return
        except FactusolDatabaseMissingError:
            add(OK, login, f"correcto · OK (base de datos {settings.base_datos})")
            if settings.ejercicio.lower() == "auto":
                detail = (
                    f"ningún ejercicio de los últimos años existe en {settings.base_datos} · "
                    "no recent year exists: abra el ejercicio en FactuSOL"
                )
            else:
                detail = (
                    f"el ejercicio {settings.ejercicio} no existe en {settings.base_datos} · "
                    f"year {settings.ejercicio} does not exist: corrija `ejercicio` o use auto"
                )
            add(FAIL, year_what, detail)
            return
        except (FactusolError, requests.RequestException) as exc:
            add(FAIL, login, f"no se pudo comprobar · could not check: {_short(exc)}")
            return
    add(OK, login, f"correcto · OK (base de datos {settings.base_datos})")
    add(OK, year_what, _year_detail(settings, year, now().year))
    add(OK, count_what, f"{count} clientes en F_CLI · clients")


def _year_detail(settings: Settings, year: str, current: int) -> str:
    if settings.ejercicio.lower() != "auto":
        return f"{year} (fijado en `ejercicio` · set in `ejercicio`)"
    if year == str(current):
        return f"{year} (auto: el año en curso · the current year)"
    return (
        f"{year} (auto: {current} aún no existe en FactuSOL, se usa el más reciente; cambiará "
        f"sola cuando se abra · {current} does not exist yet, the newest one is used)"
    )


def _count_clients(client: FactusolClient) -> int:
    """How many F_CLI rows the year holds: one COUNT query, else a scan of the codes."""
    try:
        rows = client.query("SELECT COUNT(*) AS N FROM F_CLI")
        values = list(rows[0].values()) if rows else []
        if len(values) == 1:
            return int(str(values[0]))
    except (FactusolAuthError, FactusolDatabaseMissingError):
        raise
    except (FactusolError, ValueError):
        pass  # an API without COUNT: count the codes the way the sync reads them
    return sum(1 for _ in client.iter_clients(columns=["CODCLI"], page_size=1000))


# ---------------------------------------------------------------------------- Clientify


def _clientify_client(settings: Settings) -> ClientifyClient:
    return ClientifyClient(
        api_key=settings.clientify_api_key,
        api_url=settings.clientify_api_url,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
    )


def _clientify(
    settings: Settings,
    make: Callable[[Settings], ClientifyClient],
    add: Callable[[str, str, str], None],
    report: Report,
) -> bool:
    """The Clientify checks; creates the link field only when every other line passed.
    Returns whether it created it."""
    login = "Clientify acceso · login"
    try:
        client = make(settings)
    except ValueError as exc:  # api_url not https
        add(FAIL, login, f"api_url no válida · invalid: {exc}")
        return False
    with client:
        try:
            account = client.my_account()
        except ClientifyAuthError as exc:
            add(
                FAIL,
                login,
                f"Clientify rechaza la API key ({exc.status}): revise CLIENTIFY_API_KEY (un "
                "usuario administrador) · Clientify refused the API key",
            )
            return False
        except (ClientifyError, requests.RequestException) as exc:
            add(FAIL, login, f"no se pudo comprobar · could not check: {_short(exc)}")
            return False
        add(OK, login, "correcto · OK")
        _account_line(account, add)
        try:
            count = client.count_contacts()
            definitions = client.list_contact_custom_fields()
        except (ClientifyError, requests.RequestException) as exc:
            add(FAIL, "Clientify contactos · contacts", f"no se pudo leer · {_short(exc)}")
            return False
        if count is None:
            add(WARN, "Clientify contactos · contacts", "Clientify no da el total · no count")
        else:
            add(OK, "Clientify contactos · contacts", f"{count} contactos · contacts")
        return _link_field(settings, client, definitions, add, report)


def _account_line(account: dict[str, Any] | None, add: Callable[[str, str, str], None]) -> None:
    what = "Clientify país y zona horaria · country and time zone"
    account = account or {}
    country = str(account.get("country") or "").strip().upper()
    zone = str(account.get("time_zone") or "").strip() or "?"
    if len(country) == 2 and country.isalpha():
        add(
            OK,
            what,
            f"{country}, {zone} (los teléfonos se normalizan como {country} · phones are "
            f"normalized as {country})",
        )
    else:
        add(
            WARN,
            what,
            "la cuenta no indica país: los teléfonos se normalizarán como ES (ajuste `country` "
            "en target-clientify) · no account country: phones will be normalized as ES",
        )


def _link_field(
    settings: Settings,
    client: ClientifyClient,
    definitions: list[dict[str, Any]],
    add: Callable[[str, str, str], None],
    report: Report,
) -> bool:
    name = settings.link_field
    what = f"Clientify campo «{name}» · custom field"
    found = _definition(definitions, name)
    if found is not None:
        kind = found.get("field_type")
        if kind in TEXT_FIELD_TYPES:
            add(OK, what, "existe en contactos · exists on contacts")
        else:
            add(WARN, what, f"existe pero no es de texto ({kind!r}) · exists but is not text")
        return False
    if not report.ok:
        add(
            SKIP,
            what,
            "no existe; se creará cuando todo lo anterior esté bien · missing; created once "
            "everything above is fixed",
        )
        return False
    try:
        client.ensure_custom_field(name)
    except ClientifyCustomFieldError as exc:
        add(
            FAIL,
            what,
            f"no existe y Clientify no deja crearlo ({exc.status}): créelo a mano en Clientify "
            f"(Ajustes > Campos personalizados), de texto, en contactos, llamado «{name}» · "
            "missing and cannot be created: create it by hand (text field on contacts)",
        )
        return False
    except (ClientifyError, requests.RequestException) as exc:
        add(FAIL, what, f"no se pudo crear · could not create: {_short(exc)}")
        return False
    add(OK, what, "no existía: creado ahora · was missing: created now")
    return True


def _definition(definitions: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    exact = [d for d in definitions if str(d.get("name", "")).strip() == name]
    if exact:
        return exact[0]
    folded = [
        d for d in definitions if str(d.get("name", "")).strip().casefold() == name.casefold()
    ]
    return folded[0] if folded else None


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"
