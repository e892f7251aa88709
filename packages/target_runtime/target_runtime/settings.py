"""Settings both targets share: their schema pieces, their validation, the API clients.

Each target composes its ``config_jsonschema`` from these pieces in the order of meltano.yml
(a test per target keeps both equal) and adds only its own settings. ``RunSettings.read`` turns
a validated config into typed values, with one rule per setting for both targets; in
particular ``country``: an explicit setting overrides the Clientify account's country; without
it the account's country is used, and ES when the account has none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from clientify_api import ClientifyClient
from customer_sync import AMBIGUOUS_POLICIES, TEXT_FIELDS, ConflictPolicy
from factusol_api import FactusolClient, FactusolCredentials
from singer_sdk import typing as th

from target_runtime.errors import TargetStop

DEFAULT_REGION = "ES"
API_URLS = {"clientify": "https://api.clientify.net/v1", "factusol": "https://api.sdelsol.com"}
MATCH_KEYS = ("nif", "email")
POLICIES = ("newest", "factusol", "clientify")
FACTUSOL_CREDENTIALS = ("codigo_fabricante", "codigo_cliente", "base_datos", "password")

# ------------------------------------------------------------------ schema pieces

# FactuSOL credentials, defined once: (name, description when required, when optional)
_FACTUSOL_TEXT = {
    "codigo_fabricante": (
        "Developer (fabricante) code issued by Software DELSOL.",
        "FactuSOL developer (fabricante) code (optional, see factusol_api_url).",
    ),
    "codigo_cliente": (
        "Your DELSOL customer (licensee) code.",
        "FactuSOL customer (licensee) code (optional, see factusol_api_url).",
    ),
    "base_datos": (
        "Company database id, e.g. FS001.",
        "FactuSOL company database id, e.g. FS001 (optional).",
    ),
    "password": (
        "FactuSOL API password (plain text).",
        "FactuSOL API password (optional, see factusol_api_url).",
    ),
}


def factusol_credentials(prefix: str = "", *, required: bool = True) -> list[th.Property[Any]]:
    """The four FactuSOL credential settings (``<prefix>codigo_fabricante`` …)."""
    return [
        th.Property(
            prefix + name,
            th.StringType,
            required=required,
            secret=name == "password" or None,
            description=_FACTUSOL_TEXT[name][0 if required else 1],
        )
        for name in FACTUSOL_CREDENTIALS
    ]


def api_url(name: str, system: str, description: str) -> th.Property[Any]:
    """The base URL setting of ``system`` (clientify, factusol), its default defined once."""
    return th.Property(name, th.StringType, default=API_URLS[system], description=description)


def clientify_api_key(name: str, description: str) -> th.Property[Any]:
    """The Clientify API key setting (required, secret)."""
    return th.Property(name, th.StringType, required=True, secret=True, description=description)


def shared(name: str, **own: Any) -> th.Property[Any]:
    """A setting both targets have; ``own`` replaces a piece of it (default, description)."""
    kind, values = _SHARED[name]
    return th.Property(name, kind, **{**values, **own})


_SHARED: dict[str, tuple[Any, dict[str, Any]]] = {
    "country": (
        th.StringType,
        {
            "description": (
                "ISO alpha-2 country used to normalize phones. "
                "Default: the Clientify account's country."
            )
        },
    ),
    "link_field": (th.StringType, {"default": "factusol_id"}),
    "tag": (th.StringType, {"default": "factusol"}),
    "conflict_policy": (
        th.StringType(allowed_values=list(POLICIES)),
        {
            "default": "newest",
            "description": (
                "Who wins a field changed on both sides since the last sync (or, with no ledger "
                "entry yet, a field the two sides hold differently)."
            ),
        },
    ),
    "match_fallback": (
        th.ArrayType(th.StringType(allowed_values=list(MATCH_KEYS))),
        {"default": list(MATCH_KEYS)},
    ),
    "ambiguous_match": (th.StringType(allowed_values=["reject", "create"]), {"default": "reject"}),
    "field_authority": (
        th.ObjectType(
            *(
                th.Property(name, th.StringType(allowed_values=list(POLICIES)))
                for name in TEXT_FIELDS
            ),
            additional_properties=False,
        ),
        {},
    ),
    "timezone": (
        th.StringType,
        {
            "description": (
                "IANA time zone of FactuSOL's dates (FUMCLI). Default: the Clientify account's "
                "time_zone, else Europe/Madrid."
            )
        },
    ),
    "ledger_uri": (
        th.StringType,
        {
            "default": "output/ledger/sync-ledger.sqlite",
            "description": (
                "The sync ledger (values each linked pair last agreed on): a SQLite file path or "
                "a SQLAlchemy URL such as postgresql+psycopg://user:pw@host/db. Shared by both "
                "targets; empty = no ledger (conflict policy on dates only)."
            ),
        },
    ),
    "retention_days": (
        th.IntegerType,
        {
            "default": 90,
            "description": (
                "Days the run files that name people (plan, rejects, report history, report "
                "page) and the ledger's per-customer history are kept; older ones are removed "
                "at the end of each run."
            ),
        },
    ),
    "dry_run": (th.BooleanType, {"default": False}),
    "reject_file": (
        th.StringType,
        {
            "description": (
                "JSON-lines file of rejected records (replayable Singer messages plus reason)."
            )
        },
    ),
    "max_reject_percent": (
        th.IntegerType,
        {
            "default": 20,
            "description": "Fail the run when more than this percentage of records is rejected.",
        },
    ),
    "max_workers": (th.IntegerType, {"default": 8}),
    "index_cache_file": (
        th.StringType,
        {
            "default": "output/cache/clientify-contacts.sqlite",
            "description": (
                "Where the index of Clientify contacts is kept between runs, so a run reads only "
                "what changed since the last one: a SQLite file, or a PostgreSQL URL such as "
                "postgresql+psycopg://user:pw@host/db (empty = one full scan per run)."
            ),
        },
    ),
    "index_rescan_hours": (
        th.IntegerType,
        {
            "default": 168,
            "description": (
                "Scan every contact again when the index cache's last full scan is older than "
                "this many hours (deleted contacts are detected on every run by their count)."
            ),
        },
    ),
    "timeout": (
        th.IntegerType,
        {"default": 30, "description": "HTTP timeout in seconds for each API call."},
    ),
    "max_retries": (th.IntegerType, {}),
}


def output_files(target: str, **descriptions: str) -> list[th.Property[Any]]:
    """plan_file, reject_file, report_file under ``output/`` (``descriptions`` by setting)."""
    return [
        th.Property(
            "plan_file",
            th.StringType,
            default=f"output/plans/{target}.jsonl",
            description=descriptions["plan_file"],
        ),
        shared("reject_file", default=f"output/rejects/{target}.jsonl"),
        th.Property(
            "report_file",
            th.StringType,
            default=f"output/reports/{target}.json",
            description=descriptions["report_file"],
        ),
    ]


# ------------------------------------------------------------------ reading a config


def _text(config: Mapping[str, Any], name: str, default: str = "") -> str:
    value = config.get(name)
    return default if value is None else str(value).strip()


def _integer(config: Mapping[str, Any], name: str, default: int, *, minimum: int = 0) -> int:
    value = config.get(name, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TargetStop(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class RunSettings:
    """The settings of one run, validated: same name, same meaning in both targets."""

    target: str
    link_field: str
    tag: str | None
    match_keys: tuple[str, ...]
    ambiguous_match: str
    policy: ConflictPolicy
    country: str | None  # explicit setting (overrides the account's country)
    timezone: str | None
    ledger_uri: object  # None: the default file; "": no ledger
    dry_run: bool
    max_reject_ratio: float
    max_workers: int
    index_cache: str | None
    index_rescan: dt.timedelta
    plan_file: Path
    reject_file: Path
    report_file: Path
    timeout: float
    max_retries: int
    retention_days: int = 90

    @classmethod
    def read(cls, target: str, config: Mapping[str, Any], *, max_retries: int) -> RunSettings:
        """Validate ``config``; ``TargetStop`` naming the setting on a bad value."""
        keys = config.get("match_fallback")
        match_keys = tuple(str(k) for k in (list(MATCH_KEYS) if keys is None else keys))
        unknown = [k for k in match_keys if k not in MATCH_KEYS]
        if unknown:
            raise TargetStop(f"match_fallback accepts {list(MATCH_KEYS)}; got {unknown}")
        ambiguous = _text(config, "ambiguous_match", "reject") or "reject"
        if ambiguous not in AMBIGUOUS_POLICIES:
            raise TargetStop(f"ambiguous_match must be one of {list(AMBIGUOUS_POLICIES)}")
        authority = dict(config.get("field_authority") or {})
        bad_fields = sorted(set(authority) - set(TEXT_FIELDS))
        if bad_fields:
            raise TargetStop(
                f"field_authority names unknown fields {bad_fields}; use any of {list(TEXT_FIELDS)}"
            )
        try:
            policy = ConflictPolicy(
                default=_text(config, "conflict_policy", "newest") or "newest",
                field_authority=authority,
            )
        except ValueError as exc:
            raise TargetStop(f"conflict_policy/field_authority: {exc}") from None
        country = _text(config, "country").upper() or None
        if country is not None and (len(country) != 2 or not country.isalpha()):
            raise TargetStop(f"country must be an ISO alpha-2 code such as ES; got {country!r}")
        cache = _text(config, "index_cache_file") or None
        return cls(
            target=target,
            link_field=_text(config, "link_field", "factusol_id") or "factusol_id",
            tag=_text(config, "tag", "factusol") or None,
            match_keys=match_keys,
            ambiguous_match=ambiguous,
            policy=policy,
            country=country,
            timezone=_text(config, "timezone") or None,
            ledger_uri=config.get("ledger_uri"),
            dry_run=bool(config.get("dry_run", False)),
            max_reject_ratio=_integer(config, "max_reject_percent", 20) / 100,
            max_workers=_integer(config, "max_workers", 8, minimum=1),
            index_cache=cache,
            index_rescan=dt.timedelta(hours=_integer(config, "index_rescan_hours", 168)),
            plan_file=Path(_text(config, "plan_file") or f"output/plans/{target}.jsonl"),
            reject_file=Path(_text(config, "reject_file") or f"output/rejects/{target}.jsonl"),
            report_file=Path(_text(config, "report_file") or f"output/reports/{target}.json"),
            timeout=float(_integer(config, "timeout", 30, minimum=1)),
            max_retries=_integer(config, "max_retries", max_retries),
            retention_days=_integer(config, "retention_days", 90, minimum=1),
        )


# ------------------------------------------------------------------ the API clients


def factusol_client(
    config: Mapping[str, Any],
    settings: RunSettings,
    *,
    prefix: str = "",
    required: bool = True,
    pool_size: int = 1,
) -> FactusolClient | None:
    """The FactuSOL client of ``<prefix>`` settings (no call is made). With ``required=False``,
    None when none of the credentials is set; a partial set is an error either way."""
    given = {name: _text(config, prefix + name) for name in FACTUSOL_CREDENTIALS}
    if not required and not any(given.values()):
        return None
    missing = [prefix + name for name, value in given.items() if not value]
    if missing:
        raise TargetStop(
            f"bad setting: set all FactuSOL credentials{'' if required else ' or none'}; "
            f"missing {missing}"
        )
    # One Session shared by the writer threads (tokens are renewed under the client's lock);
    # its pool must hold a connection per worker or urllib3 discards them.
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool_size + 1)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    try:
        return FactusolClient(
            FactusolCredentials(**given),
            api_url=_text(config, prefix + "api_url") or API_URLS["factusol"],
            ejercicio=_text(config, prefix + "ejercicio") or "auto",
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            session=session,
        )
    except ValueError as exc:
        raise TargetStop(f"bad setting: {exc}") from None


def clientify_client(
    config: Mapping[str, Any], settings: RunSettings, *, prefix: str = ""
) -> ClientifyClient:
    """The Clientify client of ``<prefix>api_key`` / ``api_url`` / ``rate_limit`` (no call)."""
    try:
        return ClientifyClient(
            api_key=_text(config, prefix + "api_key"),
            api_url=_text(config, prefix + "api_url") or API_URLS["clientify"],
            rate_limit=float(config.get(prefix + "rate_limit") or 5),
            timeout=settings.timeout,
            max_retries=settings.max_retries,
        )
    except ValueError as exc:
        raise TargetStop(f"bad setting: {exc}") from None


def settings_drift(schema: Mapping[str, Any], settings: Sequence[Mapping[str, Any]]) -> list[str]:
    """How a target's ``config_jsonschema`` differs from its meltano.yml ``settings`` list
    (names and order, descriptions, defaults and secrets); empty when they agree. The SDK
    appends its own capability settings after ours, so only the first ones are compared."""
    properties = schema["properties"]
    names = [str(s["name"]) for s in settings]
    problems = [] if list(properties)[: len(names)] == names else ["names or order differ"]
    for setting in settings:
        name = str(setting["name"])
        prop = properties.get(name, {})
        if prop.get("description") != setting.get("description"):
            problems.append(f"{name}: description")
        if prop.get("default") != setting.get("value"):
            problems.append(f"{name}: default")
        if bool(prop.get("secret")) != bool(setting.get("sensitive")):
            problems.append(f"{name}: secret")
    return problems
