"""The tenants file's value parsers: each checks one key's value and names it when invalid.

Each parser takes `where` (the entry and key, e.g. `companies[0].factusol`) for its message;
`modified_crons` turns `sync_every_minutes` into the modified jobs' crons.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .tenants_model import (
    ACCOUNT,
    ENV_NAME,
    JOB_KINDS,
    MANAGED_SUFFIXES,
    MODIFIED_JOBS,
    PLUGIN_PREFIXES,
    SECRET_WORDS,
    URI_PLACEHOLDERS,
    AlertSettings,
    ClientifyAccount,
    FactusolAccount,
    Retries,
    TenantsError,
    Value,
)

__all__ = ["DEFAULT_PROBES", "EMAIL", "modified_crons"]


def _mapping(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TenantsError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return raw


def _check_keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in raw:
        if key in allowed:
            continue
        hint = ""
        if key in {"password", "api_key"} or any(w.lower() in str(key) for w in SECRET_WORDS):
            hint = (
                f"; secrets are never written in the tenants file: give the name of the "
                f"environment variable holding it, e.g. {key}_env: ACME_{str(key).upper()}"
            )
        raise TenantsError(f"{where}: unknown key {key!r}{hint}")


def _text(raw: Any, where: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise TenantsError(f"{where}: expected text, got {type(raw).__name__}")
    text = str(raw).strip()
    if not text:
        raise TenantsError(f"{where}: empty")
    return text


def _env_name(raw: Any, where: str) -> str:
    name = _text(raw, where)
    if not ENV_NAME.match(name):
        raise TenantsError(f"{where}: {name!r} is not an environment variable name")
    return name


def _value(raw: Mapping[str, Any], key: str, where: str, *, required: bool) -> Value | None:
    literal, env = raw.get(key), raw.get(f"{key}_env")
    if literal is not None and env is not None:
        raise TenantsError(f"{where}: give {key} or {key}_env, not both")
    if env is not None:
        return Value(env=_env_name(env, f"{where}.{key}_env"))
    if literal is not None:
        return Value(literal=_text(literal, f"{where}.{key}"))
    if required:
        raise TenantsError(f"{where}: {key} (or {key}_env) is required")
    return None


def _required(raw: Mapping[str, Any], key: str, where: str) -> Value:
    value = _value(raw, key, where, required=True)
    if value is None:  # pragma: no cover - _value raised
        raise TenantsError(f"{where}: {key} (or {key}_env) is required")
    return value


def _account(raw: Any, default: str, where: str) -> str:
    account = default if raw is None else _text(raw, where)
    if not ACCOUNT.match(account):
        raise TenantsError(f"{where}: {account!r} must be 1-63 of A-Z a-z 0-9 _ . -")
    return account


def _url(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    url = _text(raw, where)
    if not url.startswith(("http://", "https://")):
        raise TenantsError(f"{where}: {url!r} is not an http(s) URL")
    return url


def _factusol(raw: Any, where: str, company_id: str) -> FactusolAccount:
    data = _mapping(raw, where)
    keys = {"codigo_fabricante", "codigo_cliente", "base_datos"}
    _check_keys(
        data,
        {*keys, *(f"{k}_env" for k in keys), "password_env", "api_url", "account"},
        where,
    )
    if "password_env" not in data:
        raise TenantsError(f"{where}: password_env (the variable holding the password) is required")
    fabricante = _required(data, "codigo_fabricante", where)
    cliente = _required(data, "codigo_cliente", where)
    base_datos = _required(data, "base_datos", where)
    # The API account is the DELSOL customer (its licence, codigo_cliente): every company
    # database it holds shares it. When the code comes from the environment, the company is
    # its own account unless the file names the shared one.
    return FactusolAccount(
        codigo_fabricante=fabricante,
        codigo_cliente=cliente,
        base_datos=base_datos,
        password_env=_env_name(data["password_env"], f"{where}.password_env"),
        account=_account(data.get("account"), cliente.literal or company_id, f"{where}.account"),
        api_url=_url(data.get("api_url"), f"{where}.api_url"),
    )


def _clientify(raw: Any, where: str, company_id: str) -> ClientifyAccount:
    data = _mapping(raw, where)
    _check_keys(data, {"api_key_env", "api_url", "account"}, where)
    if "api_key_env" not in data:
        raise TenantsError(f"{where}: api_key_env (the variable holding the API key) is required")
    return ClientifyAccount(
        api_key_env=_env_name(data["api_key_env"], f"{where}.api_key_env"),
        account=_account(data.get("account"), company_id, f"{where}.account"),
        api_url=_url(data.get("api_url"), f"{where}.api_url"),
    )


def _schedules(raw: Any, where: str) -> dict[str, list[str]]:
    data = _mapping(raw, where)
    _check_keys(data, set(JOB_KINDS), where)
    out: dict[str, list[str]] = {}
    for job, crons in data.items():
        if crons is None or crons == []:
            out[job] = []
            continue
        items = [crons] if isinstance(crons, str) else crons
        if not isinstance(items, list) or not all(isinstance(c, str) for c in items):
            raise TenantsError(f"{where}.{job}: a cron string or a list of them")
        for cron in items:
            if len(cron.split()) != 5:
                raise TenantsError(f"{where}.{job}: {cron!r} is not a 5-field cron expression")
        out[job] = list(items)
    return out


def modified_crons(every: int) -> dict[str, list[str]]:
    """The modified jobs' crons for a sync every `every` minutes: Clientify->FactuSOL runs half
    an interval after FactuSOL->Clientify, so a company's two directions do not start together."""
    if every == 1:
        return {job: ["* * * * *"] for job in MODIFIED_JOBS}
    if every == 60:
        return {MODIFIED_JOBS[0]: ["0 * * * *"], MODIFIED_JOBS[1]: ["30 * * * *"]}
    return {
        MODIFIED_JOBS[0]: [f"*/{every} * * * *"],
        MODIFIED_JOBS[1]: [f"{every // 2}-59/{every} * * * *"],
    }


def _days(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise TenantsError(f"{where}: a whole number of days >= 1")
    return raw


def _minutes(raw: Any, where: str, allowed: tuple[int, ...] | None = None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise TenantsError(f"{where}: a whole number of minutes >= 1")
    if allowed is not None and raw not in allowed:
        raise TenantsError(
            f"{where}: {raw} does not divide the hour; one of {', '.join(map(str, allowed))}"
        )
    return raw


EMAIL = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+$")


def _emails(raw: Any, where: str) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise TenantsError(f"{where}: an e-mail address or a list of them")
    out = []
    for item in items:
        text = _text(item, where)
        if not EMAIL.match(text):
            raise TenantsError(f"{where}: {text!r} is not an e-mail address")
        out.append(text)
    return tuple(out)


def _alerts(raw: Any, where: str) -> AlertSettings | None:
    if raw is None:
        return None
    data = _mapping(raw, where)
    _check_keys(data, {"email", "webhook", "timeout_seconds"}, where)
    if not data.get("email") and not data.get("webhook"):
        raise TenantsError(f"{where}: give email:, webhook: or both")
    kwargs: dict[str, Any] = {}
    timeout = data.get("timeout_seconds", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise TenantsError(f"{where}.timeout_seconds: a number > 0")
    kwargs["timeout"] = float(timeout)
    if data.get("email"):
        mail = _mapping(data["email"], f"{where}.email")
        here = f"{where}.email"
        _check_keys(
            mail, {"host", "port", "security", "username", "password_env", "from", "to"}, here
        )
        for key in ("host", "from", "to"):
            if key not in mail:
                raise TenantsError(f"{here}: {key} is required")
        security = str(mail.get("security", "starttls"))
        if security not in ("starttls", "ssl", "none"):
            raise TenantsError(f"{here}.security: starttls, ssl or none")
        port = mail.get("port", 465 if security == "ssl" else 587)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise TenantsError(f"{here}.port: a TCP port")
        kwargs.update(
            smtp_host=_text(mail["host"], f"{here}.host"),
            smtp_port=port,
            smtp_security=security,
            smtp_username=None
            if mail.get("username") is None
            else _text(mail["username"], f"{here}.username"),
            smtp_password_env=None
            if mail.get("password_env") is None
            else _env_name(mail["password_env"], f"{here}.password_env"),
            mail_from=_emails(mail["from"], f"{here}.from")[0],
            mail_to=_emails(mail["to"], f"{here}.to"),
        )
    if data.get("webhook"):
        hook = _mapping(data["webhook"], f"{where}.webhook")
        _check_keys(hook, {"url", "url_env"}, f"{where}.webhook")
        value = _value(hook, "url", f"{where}.webhook", required=True)
        if value is not None and value.literal is not None:
            _url(value.literal, f"{where}.webhook.url")
        kwargs["webhook"] = value
    return AlertSettings(**kwargs)


#: The taps' own probes, by direction, for `change_probe: true`.
DEFAULT_PROBES = {
    "factusol_to_clientify": "tap_factusol.probe:has_changes",
    "clientify_to_factusol": "tap_clientify.probe:has_changes",
}
_PROBE_JOBS = {
    "factusol-to-clientify": "factusol_to_clientify",
    "clientify-to-factusol": "clientify_to_factusol",
}


def _probe_path(raw: Any, where: str) -> str:
    text = _text(raw, where)
    if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", text):
        raise TenantsError(f"{where}: true, false or module:function")
    return text


def _probes(raw: Any, where: str) -> dict[str, str]:
    """`change_probe`: true (both modified jobs, the taps' probes), false, `module:function`
    (the FactuSOL -> Clientify job, as before), or per job: {factusol-to-clientify: true, ...}."""
    if raw is None or raw is False:
        return {}
    if raw is True:
        return dict(DEFAULT_PROBES)
    if not isinstance(raw, Mapping):
        return {"factusol_to_clientify": _probe_path(raw, where)}
    probes: dict[str, str] = {}
    for job, value in raw.items():
        direction = _PROBE_JOBS.get(str(job))
        if direction is None:
            raise TenantsError(f"{where}: {job!r} is not a modified job ({', '.join(_PROBE_JOBS)})")
        if value is True:
            probes[direction] = DEFAULT_PROBES[direction]
        elif value is not None and value is not False:
            probes[direction] = _probe_path(value, f"{where}.{job}")
    return probes


def _setting_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    raise TenantsError(f"{where}: unsupported value {value!r}")


def _settings(raw: Any, where: str) -> dict[str, str]:
    data = _mapping(raw, where)
    out: dict[str, str] = {}
    for name, value in data.items():
        key = _env_name(name, where)
        here = f"{where}.{key}"
        if not key.startswith(PLUGIN_PREFIXES):
            raise TenantsError(
                f"{here}: settings are plugin settings by environment variable, starting "
                f"with one of {', '.join(PLUGIN_PREFIXES)}"
            )
        if any(word in key for word in SECRET_WORDS):
            raise TenantsError(f"{here}: a secret is never written in the tenants file")
        if key.endswith(MANAGED_SUFFIXES):
            raise TenantsError(
                f"{here}: set per company by the orchestrator (credentials, api_url, paths, "
                "ledger_uri, index_cache_uri have their own keys)"
            )
        out[key] = _setting_value(value, here)
    return out


def _retries(raw: Any, where: str, base: Retries) -> Retries:
    data = _mapping(raw, where)
    _check_keys(data, {"max_retries", "delay_seconds"}, where)
    max_retries = data.get("max_retries", base.max_retries)
    delay = data.get("delay_seconds", base.delay_seconds)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise TenantsError(f"{where}.max_retries: an integer >= 0")
    if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
        raise TenantsError(f"{where}.delay_seconds: a number >= 0")
    return Retries(max_retries=max_retries, delay_seconds=float(delay))


def _uri(raw: Mapping[str, Any], key: str, where: str, *, shared: bool) -> Value | None:
    value = _value(raw, key, where, required=False)
    if value is None:
        return None
    if value.literal is not None:
        if ":" not in value.literal:
            raise TenantsError(f"{where}.{key}: {value.literal!r} is not a SQLAlchemy URL")
        if shared and not any(p in value.literal for p in URI_PLACEHOLDERS):
            raise TenantsError(
                f"{where}.{key}: a URI shared by every company must contain {{company}} or "
                "{company_dir}, so that each company keeps its own"
            )
    return Value(literal=value.literal, env=value.env, shared=shared)
