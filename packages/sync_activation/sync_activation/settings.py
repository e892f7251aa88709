"""The settings the check uses: read the way the sync reads them, or given explicitly.

Every plugin a job runs reads its own resolved config, and a plugin's own variable
(``TARGET_CLIENTIFY_API_KEY``) outranks the shared one (``CLIENTIFY_API_KEY``): checking one
plugin's copy let a wrong key given to another pass, and its first run fail. So the effective
config of EVERY plugin of meltano.yml's jobs is resolved by Meltano itself,
``meltano --environment=<env> config --unsafe print --format=json <plugin>`` (Meltano 4.4;
without ``--unsafe`` it masks the secrets as ``*****``), and the credential sets compared: the
check logs in with the one they all use, and plugins that disagree are named (never a value) in
``Settings.disagreements``, which fails the check. The output holds secrets: it is parsed here
and never printed, not even on an error.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CLIENTIFY_URL",
    "DEFAULT_FACTUSOL_URL",
    "ENV_VARS",
    "PLUGIN_KEYS",
    "Settings",
    "SettingsError",
    "settings_from_env",
    "settings_from_meltano",
]

DEFAULT_FACTUSOL_URL = "https://api.sdelsol.com"
DEFAULT_CLIENTIFY_URL = "https://api.clientify.net/v1"
MASKED = "*****"  # what `meltano config` prints for a secret in its default --safe mode

# Settings field -> the .env variable the README documents (plus the URLs/year for tests).
ENV_VARS: dict[str, str] = {
    "factusol_api_url": "FACTUSOL_API_URL",
    "codigo_fabricante": "FACTUSOL_CODIGO_FABRICANTE",
    "codigo_cliente": "FACTUSOL_CODIGO_CLIENTE",
    "base_datos": "FACTUSOL_BASE_DATOS",
    "password": "FACTUSOL_PASSWORD",
    "ejercicio": "FACTUSOL_EJERCICIO",
    "clientify_api_url": "CLIENTIFY_API_URL",
    "clientify_api_key": "CLIENTIFY_API_KEY",
    "link_field": "CLIENTIFY_LINK_FIELD",
}

_FACTUSOL = {
    "api_url": "factusol_api_url",
    "codigo_fabricante": "codigo_fabricante",
    "codigo_cliente": "codigo_cliente",
    "base_datos": "base_datos",
    "password": "password",
    "ejercicio": "ejercicio",
}
_CLIENTIFY = {"api_url": "clientify_api_url", "api_key": "clientify_api_key"}
# Every plugin meltano.yml's jobs run -> {its setting name: our field}: what it connects with.
PLUGIN_KEYS: dict[str, dict[str, str]] = {
    "tap-factusol": _FACTUSOL,
    "tap-factusol--full": _FACTUSOL,
    "tap-clientify": {**_CLIENTIFY, "link_field": "link_field"},
    "tap-clientify--full": {**_CLIENTIFY, "link_field": "link_field"},
    "target-clientify": {
        **_CLIENTIFY,
        "link_field": "link_field",
        **{f"factusol_{theirs}": ours for theirs, ours in _FACTUSOL.items()},
        "timeout": "timeout",
        "max_retries": "max_retries",
    },
    "target-factusol": {
        **_FACTUSOL,
        **{f"clientify_{theirs}": ours for theirs, ours in _CLIENTIFY.items()},
        "link_field": "link_field",
        "timeout": "timeout",
        "max_retries": "max_retries",
    },
}
# The plugin whose values the check uses (it holds both sets), when all agree anyway.
MELTANO_PLUGIN = "target-factusol"
# What each compared field is called in a line (no value is ever shown).
_LABELS = {
    "factusol_api_url": "FactuSOL api_url",
    "codigo_fabricante": "FactuSOL codigo_fabricante",
    "codigo_cliente": "FactuSOL codigo_cliente",
    "base_datos": "FactuSOL base_datos",
    "password": "FactuSOL password",
    "ejercicio": "FactuSOL ejercicio",
    "clientify_api_url": "Clientify api_url",
    "clientify_api_key": "Clientify api_key",
    "link_field": "link_field",
}


SECRET_FIELDS = ("password", "clientify_api_key")


class SettingsError(Exception):
    """The settings could not be read (the message never holds a secret)."""


@dataclass(frozen=True)
class Settings:
    """Both credential sets and what the check needs besides. Secrets stay out of ``repr``."""

    codigo_fabricante: str = ""
    codigo_cliente: str = ""
    base_datos: str = ""
    password: str = field(default="", repr=False)
    clientify_api_key: str = field(default="", repr=False)
    factusol_api_url: str = DEFAULT_FACTUSOL_URL
    clientify_api_url: str = DEFAULT_CLIENTIFY_URL
    ejercicio: str = "auto"
    link_field: str = "factusol_id"
    timeout: float = 30.0
    max_retries: int = 3
    source: str = "explicit"  # where they came from, for the first line of the output
    # Plugins whose effective config disagrees with the others', one line per field (names
    # the plugins and their own variables, never a value): a sync cannot run.
    disagreements: tuple[str, ...] = ()

    def secrets(self) -> list[str]:
        """Every form a secret could take in text: as given, and the password in Base64."""
        values = [self.password, self.clientify_api_key]
        if self.password:
            values.append(base64.b64encode(self.password.encode("utf-8")).decode("ascii"))
        return [value for value in values if value]

    def with_overrides(self, overrides: Mapping[str, str | None]) -> Settings:
        """These settings with every non-empty override applied (CLI options)."""
        changes: dict[str, Any] = {name: value for name, value in overrides.items() if value}
        return replace(self, **changes) if changes else self


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _from_mapping(values: Mapping[str, Any], source: str) -> Settings:
    defaults = Settings()
    kwargs: dict[str, Any] = {"source": source}
    for name in ENV_VARS:
        text = _text(values.get(name))
        # the password may legitimately start or end with a space: keep it as typed
        kwargs[name] = (str(values.get(name) or "") if name == "password" else text) or getattr(
            defaults, name
        )
    try:
        if values.get("timeout") not in (None, ""):
            kwargs["timeout"] = float(values["timeout"])
        if values.get("max_retries") not in (None, ""):
            kwargs["max_retries"] = int(values["max_retries"])
    except (TypeError, ValueError):
        raise SettingsError("timeout and max_retries must be numbers") from None
    return Settings(**kwargs)


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the README's ``.env`` variables (FACTUSOL_*, CLIENTIFY_API_KEY)."""
    env = os.environ if environ is None else environ
    return _from_mapping({name: env.get(var) for name, var in ENV_VARS.items()}, "env")


def find_meltano() -> str:
    """The ``meltano`` next to this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("meltano")
    if beside.exists():
        return str(beside)
    found = shutil.which("meltano")
    if found is None:
        raise SettingsError("meltano not found: run `make setup`, or pass --meltano PATH")
    return found


def _meltano_config(
    plugin: str,
    environment: str,
    *,
    project_root: Path | None,
    meltano: str,
    env: Mapping[str, str] | None,
    timeout: float,
) -> dict[str, Any]:
    """One plugin's config as Meltano resolves it for ``environment`` (with ``.env``)."""
    command = [
        meltano,
        f"--environment={environment}",
        "config",
        "--unsafe",  # the secrets themselves, to log in with; parsed here, never printed
        "print",
        "--format=json",
        plugin,
    ]
    try:
        proc = subprocess.run(
            command,
            cwd=project_root,
            env=dict(os.environ if env is None else env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SettingsError(f"could not run meltano: {type(exc).__name__}") from None
    if proc.returncode != 0:
        # Meltano's own error line (an unknown environment, no project here); never stdout,
        # which could hold the config.
        lines = [
            line.strip()
            for line in proc.stderr.splitlines()
            if line.strip() and "melta.no" not in line  # not the "Need help?" footer
        ]
        hint = lines[-1][:300] if lines else "no message"
        raise SettingsError(
            f"`meltano --environment={environment} config print {plugin}` failed "
            f"(exit {proc.returncode}): {hint}"
        )
    start = proc.stdout.find("{")
    try:
        data = json.loads(proc.stdout[start:]) if start >= 0 else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SettingsError(f"meltano printed no JSON config for {plugin}")
    return data


def _variable(plugin: str, setting: str) -> str:
    """Meltano's own variable for a plugin's setting (TARGET_CLIENTIFY_API_KEY)."""
    return f"{plugin}_{setting}".upper().replace("-", "_")


def _disagreements(configs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per field on which the plugins' effective configs differ (no value shown)."""
    lines = []
    for field_name, label in _LABELS.items():
        groups: dict[str, list[tuple[str, str]]] = {}
        for plugin, keys in PLUGIN_KEYS.items():
            for theirs, ours in keys.items():
                if ours == field_name and plugin in configs:
                    value = configs[plugin].get(theirs)
                    text = "" if value is None else str(value)
                    groups.setdefault(text, []).append((plugin, theirs))
        if len(groups) < 2:
            continue
        # The largest group is "the shared value"; the others are named with their variable.
        ordered = sorted(groups.values(), key=len, reverse=True)
        odd = [
            f"{plugin} ({_variable(plugin, theirs)}" + (", vacío · empty)" if not text else ")")
            for text, members in groups.items()
            if members is not ordered[0]
            for plugin, theirs in members
        ]
        lines.append(
            f"{label}: {', '.join(odd)} no usa el mismo valor que "
            f"{', '.join(plugin for plugin, _ in ordered[0])} · does not use the same value"
        )
    return lines


def settings_from_meltano(
    environment: str,
    *,
    project_root: Path | None = None,
    meltano: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> Settings:
    """Every job plugin's config as Meltano resolves it for ``environment`` (with ``.env``):
    the values target-factusol runs with, and any plugin that would run with others."""
    executable = meltano or find_meltano()

    def read(plugin: str) -> dict[str, Any]:
        return _meltano_config(
            plugin,
            environment,
            project_root=project_root,
            meltano=executable,
            env=env,
            timeout=timeout,
        )

    # The first alone: a new system database is created by it, not raced for by three.
    first, *rest = PLUGIN_KEYS
    configs = {first: read(first)}
    with ThreadPoolExecutor(max_workers=3) as pool:
        configs.update(zip(rest, pool.map(read, rest), strict=True))
    for plugin, data in configs.items():
        secrets = [k for k, ours in PLUGIN_KEYS[plugin].items() if ours in SECRET_FIELDS]
        if any(data.get(key) == MASKED for key in secrets):
            raise SettingsError("meltano printed the secrets masked (*****); --unsafe was ignored")
    values = {
        ours: configs[MELTANO_PLUGIN].get(theirs)
        for theirs, ours in PLUGIN_KEYS[MELTANO_PLUGIN].items()
    }
    settings = _from_mapping(values, f"meltano --environment={environment}")
    return replace(settings, disagreements=tuple(_disagreements(configs)))
