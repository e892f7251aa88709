"""The pieces without servers: counting without COUNT, scrubbing, settings sources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from factusol_api import FactusolAuthError, FactusolError
from sync_activation import OK, Line, Settings, settings_from_env
from sync_activation.checks import _count_clients
from sync_activation.settings import SettingsError, settings_from_meltano


class FakeFactusol:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.scanned = False

    def query(self, sql: str) -> list[dict[str, Any]]:
        assert sql == "SELECT COUNT(*) AS N FROM F_CLI"
        if isinstance(self.answer, Exception):
            raise self.answer
        rows: list[dict[str, Any]] = self.answer
        return rows

    def iter_clients(self, *, columns: list[str], page_size: int) -> Iterator[dict[str, Any]]:
        assert columns == ["CODCLI"]
        self.scanned = True
        yield from ({"CODCLI": n} for n in range(7))


@pytest.mark.parametrize(
    ("answer", "count", "scanned"),
    [
        ([{"N": 42}], 42, False),
        ([{"Expr1000": "42"}], 42, False),  # an alias the API ignored, a number as text
        ([], 7, True),  # resultado null: no COUNT support
        ([{"N": "muchos"}], 7, True),
        (FactusolError("FactuSOL /admin/LanzarConsulta answered KO2", code="KO2"), 7, True),
    ],
)
def test_count_falls_back_to_a_scan_of_the_codes(answer: Any, count: int, scanned: bool) -> None:
    fake = FakeFactusol(answer)
    assert _count_clients(fake) == count  # type: ignore[arg-type]
    assert fake.scanned is scanned


def test_count_lets_auth_errors_through() -> None:
    with pytest.raises(FactusolAuthError):
        _count_clients(FakeFactusol(FactusolAuthError("login failed")))  # type: ignore[arg-type]


def test_lines_are_scrubbed_of_every_form_of_a_secret() -> None:
    s = Settings(password="pässwörd", clientify_api_key="key-1234")
    b64 = "cMOkc3N3w7ZyZA=="  # base64 of the password's UTF-8 bytes
    line = Line(OK, "x", f"pässwörd key-1234 {b64} abc")
    assert line.render(s.secrets()) == "✓ x: *** *** *** abc"
    assert "pässwörd" not in repr(s)
    assert "key-1234" not in repr(s)


def test_settings_from_env_and_overrides() -> None:
    s = settings_from_env(
        {
            "FACTUSOL_CODIGO_FABRICANTE": " 1234 ",
            "FACTUSOL_PASSWORD": " spaced ",
            "CLIENTIFY_API_KEY": "k",
            "FACTUSOL_EJERCICIO": "",
        }
    )
    assert (s.codigo_fabricante, s.password, s.ejercicio, s.source) == (
        "1234",
        " spaced ",  # a password is kept as typed
        "auto",
        "env",
    )
    assert s.factusol_api_url == "https://api.sdelsol.com"
    changed = s.with_overrides({"ejercicio": "2025", "base_datos": None})
    assert (changed.ejercicio, changed.base_datos) == ("2025", "")


def test_meltano_that_cannot_run_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="could not run meltano"):
        settings_from_meltano("dev", meltano="/nonexistent/meltano")


def test_disagreements_name_the_odd_plugin_and_its_variable_never_a_value() -> None:
    from sync_activation.settings import PLUGIN_KEYS, _disagreements

    ours = {
        "factusol_api_url": "https://api.sdelsol.com",
        "codigo_fabricante": "1234",
        "codigo_cliente": "56789",
        "base_datos": "FS001",
        "password": "pw",
        "ejercicio": "auto",
        "clientify_api_url": "https://api.clientify.net/v1",
        "clientify_api_key": "k-shared",
        "link_field": "factusol_id",
        "timeout": 30,
        "max_retries": 5,
    }
    configs = {
        plugin: {theirs: ours[field] for theirs, field in keys.items()}
        for plugin, keys in PLUGIN_KEYS.items()
    }
    assert _disagreements(configs) == []
    configs["target-clientify"]["api_key"] = "k-other"
    configs["tap-factusol--full"].pop("password")
    lines = _disagreements(configs)
    assert lines == [
        "FactuSOL password: tap-factusol--full (TAP_FACTUSOL__FULL_PASSWORD, vacío · empty) no "
        "usa el mismo valor que tap-factusol, target-clientify, target-factusol · does not use "
        "the same value",
        "Clientify api_key: target-clientify (TARGET_CLIENTIFY_API_KEY) no usa el mismo valor "
        "que tap-clientify, tap-clientify--full, target-factusol · does not use the same value",
    ]
    assert not any("k-other" in line or "k-shared" in line for line in lines)


def test_every_plugin_of_the_jobs_and_each_connection_setting_is_compared() -> None:
    """Drift guard: a plugin added to a job of meltano.yml, or a credential/URL setting added to
    a plugin, must be read by the check."""
    from pathlib import Path

    import yaml
    from sync_activation.settings import PLUGIN_KEYS

    root = Path(__file__).resolve().parents[3]
    project = yaml.safe_load((root / "meltano.yml").read_text(encoding="utf-8"))
    in_jobs = {name for job in project["jobs"] for task in job["tasks"] for name in task.split()}
    assert set(PLUGIN_KEYS) == in_jobs
    words = ("api_url", "api_key", "password", "codigo_", "base_datos", "ejercicio")
    for kind in project["plugins"].values():
        for plugin in kind:
            if "settings" not in plugin:
                continue
            for setting in plugin["settings"]:
                if any(word in setting["name"] for word in words):
                    assert setting["name"] in PLUGIN_KEYS[plugin["name"]], (plugin, setting)
