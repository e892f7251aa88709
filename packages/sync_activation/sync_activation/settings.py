"""The settings the check uses: read the way the sync reads them, or given explicitly.

The sync's target-factusol holds both credential sets (FactuSOL and the Clientify key it uses
for the link write-back), so Meltano's resolved config of that plugin is the one source of
truth: ``meltano --environment=<env> config --unsafe print --format=json target-factusol``
(Meltano 4.4; without ``--unsafe`` it masks the secrets as ``*****``). Its output holds the
secrets, so it is parsed here and never printed, not even on an error.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CLIENTIFY_URL",
    "DEFAULT_FACTUSOL_URL",
    "ENV_VARS",
    "Settings",
    "SettingsError",
    "settings_from_env",
    "settings_from_meltano",
]

DEFAULT_FACTUSOL_URL = "https://api.sdelsol.com"
DEFAULT_CLIENTIFY_URL = "https://api.clientify.net/v1"
MELTANO_PLUGIN = "target-factusol"
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

# target-factusol's setting names -> ours.
_MELTANO_KEYS: dict[str, str] = {
    "api_url": "factusol_api_url",
    "codigo_fabricante": "codigo_fabricante",
    "codigo_cliente": "codigo_cliente",
    "base_datos": "base_datos",
    "password": "password",
    "ejercicio": "ejercicio",
    "clientify_api_url": "clientify_api_url",
    "clientify_api_key": "clientify_api_key",
    "link_field": "link_field",
    "timeout": "timeout",
    "max_retries": "max_retries",
}


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


def settings_from_meltano(
    environment: str,
    *,
    project_root: Path | None = None,
    meltano: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> Settings:
    """target-factusol's config as Meltano resolves it for ``environment`` (with ``.env``)."""
    command = [
        meltano or find_meltano(),
        f"--environment={environment}",
        "config",
        "--unsafe",  # the secrets themselves, to log in with; parsed here, never printed
        "print",
        "--format=json",
        MELTANO_PLUGIN,
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
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        hint = lines[-1][:300] if lines else "no message"
        raise SettingsError(
            f"`meltano --environment={environment} config print {MELTANO_PLUGIN}` failed "
            f"(exit {proc.returncode}): {hint}"
        )
    start = proc.stdout.find("{")
    try:
        data = json.loads(proc.stdout[start:]) if start >= 0 else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SettingsError(f"meltano printed no JSON config for {MELTANO_PLUGIN}")
    values = {ours: data.get(theirs) for theirs, ours in _MELTANO_KEYS.items()}
    if MASKED in (values.get("password"), values.get("clientify_api_key")):
        raise SettingsError("meltano printed the secrets masked (*****); --unsafe was ignored")
    return _from_mapping(values, f"meltano --environment={environment}")
