"""The connectors' plugin definitions, meltano.yml entries, `--about` and READMEs agree.

Fast and in-process: `--about` comes from the connector classes (what the CLI prints), no
network, no build. When a setting changes, `scripts/plugin_docs.py --write` regenerates the
definitions and README blocks; these tests say what is stale or contradictory.
"""

from __future__ import annotations

import copy
import re
import subprocess
from typing import Any

import pytest
import yaml

from .conftest import ROOT, plugin_docs

CONNECTORS = plugin_docs.CONNECTORS
IDS = [c.name for c in CONNECTORS]


def _definition_file(connector: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(connector.definition_path.read_text(encoding="utf-8"))
    return data


def _between(text: str, block: str) -> str:
    start, end = plugin_docs.MARKERS[block]
    match = re.search(re.escape(start) + r"(.*?)" + re.escape(end), text, re.DOTALL)
    assert match, f"markers {start} ... {end} missing"
    return match.group(1)


def test_generated_files_are_up_to_date() -> None:
    stale = [str(p.relative_to(ROOT)) for p in plugin_docs.stale_files()]
    assert not stale, f"stale: {stale}; run .venv/bin/python scripts/plugin_docs.py --write"


@pytest.mark.parametrize("connector", CONNECTORS, ids=IDS)
def test_definition_meltano_yml_and_about_agree(connector: Any) -> None:
    entry = plugin_docs.meltano_entry(connector)
    problems = plugin_docs.settings_disagreements(
        plugin_docs.about_json(connector),
        plugin_docs.builtin_settings(connector),
        entry,
        _definition_file(connector),
    )
    problems += plugin_docs.pip_url_disagreements(connector, entry)
    assert problems == []


@pytest.mark.parametrize("connector", CONNECTORS, ids=IDS)
def test_definition_has_the_hub_shape(connector: Any) -> None:
    defn = _definition_file(connector)
    assert defn["name"] == connector.name
    assert "variant" not in defn  # Meltano Hub is not reachable: a custom plugin, no variant
    for key in ("namespace", "pip_url", "executable", "capabilities", "description", "label"):
        assert defn[key], key
    secrets = {s["name"] for s in defn["settings"] if s["sensitive"]}
    assert secrets  # every connector has a password or API key
    for setting in defn["settings"]:
        assert set(setting) >= {"name", "label", "kind", "sensitive"}, setting["name"]
        assert setting["kind"] != "password", "kind password is deprecated; sensitive: true"
    required = defn["settings_group_validation"][0]
    assert secrets & set(required)  # the credentials a run cannot do without (others optional)


@pytest.mark.parametrize("connector", CONNECTORS, ids=IDS)
def test_readme_embeds_the_about_settings_table(connector: Any) -> None:
    readme = connector.readme_path.read_text(encoding="utf-8")
    table = _between(readme, "settings")
    markdown = plugin_docs.about_output(connector, "markdown")
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert rows[0] == "| Setting | Required | Default | Description |"
    assert "\n".join(rows) in markdown
    about = plugin_docs.about_json(connector)
    for name in about["settings"]["properties"]:
        assert any(row.startswith(f"| {name} |") for row in rows), name


@pytest.mark.parametrize("connector", CONNECTORS, ids=IDS)
def test_pip_url_is_git_subdirectories_library_first_and_pinned_to_the_release(
    connector: Any,
) -> None:
    repo = plugin_docs.repository_url()
    tag = f"v{plugin_docs.release_version()}"
    urls = _definition_file(connector)["pip_url"].split()
    subdirs = [u.split("#subdirectory=")[1] for u in urls]
    libraries = plugin_docs.library_dirs(connector)
    assert libraries, "every connector needs at least one of our libraries"
    assert subdirs == [*libraries, connector.directory]
    assert all(u.startswith(f"git+{repo}@{tag}#subdirectory=") for u in urls)
    for subdir in subdirs:
        assert (ROOT / subdir / "pyproject.toml").exists(), subdir
    # The README shows the pinned pip_url, the unpinned one and the --from-ref command.
    block = _between(connector.readme_path.read_text(encoding="utf-8"), "install")
    assert " ".join(urls) in block
    assert " ".join(u.replace(f"@{tag}#", "#") for u in urls) in block
    definition = connector.definition_path.relative_to(ROOT).as_posix()
    assert f"--from-ref {plugin_docs.raw_url(definition, tag)}" in block


def test_packages_share_a_version_have_ranges_a_license_and_no_sandbox() -> None:
    assert plugin_docs.package_problems() == []


def test_the_repository_url_lives_in_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    old = plugin_docs.repository_url()
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    holding = []
    for name in tracked:
        path = ROOT / name
        try:
            if old in path.read_text(encoding="utf-8"):
                holding.append(path)
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
    new = "https://git.example.org/acme/fcsync"
    monkeypatch.setattr(plugin_docs, "repository_url", lambda: new)
    regenerated = plugin_docs.generated_files()
    for path in holding:
        if path == ROOT / "pyproject.toml":
            continue
        assert path in regenerated, f"{path.relative_to(ROOT)} hard-codes {old}"
        assert old not in regenerated[path], f"{path.relative_to(ROOT)} keeps {old} outside"
        assert new in regenerated[path]


# ------------------------------------------------------------------ the checker catches drift


def _tap_factusol() -> tuple[dict[str, Any], list[str], dict[str, Any], dict[str, Any]]:
    connector = next(c for c in CONNECTORS if c.name == "tap-factusol")
    return (
        plugin_docs.about_json(connector),
        plugin_docs.builtin_settings(connector),
        copy.deepcopy(plugin_docs.meltano_entry(connector)),
        _definition_file(connector),
    )


def _setting(settings: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(s for s in settings if s["name"] == name)


def _new_default(about: dict[str, Any], entry: dict[str, Any], defn: dict[str, Any]) -> None:
    _setting(defn["settings"], "page_size")["value"] = 1000


def _not_sensitive(about: dict[str, Any], entry: dict[str, Any], defn: dict[str, Any]) -> None:
    _setting(entry["settings"], "password")["sensitive"] = False


def _other_kind(about: dict[str, Any], entry: dict[str, Any], defn: dict[str, Any]) -> None:
    _setting(entry["settings"], "lookback_hours")["kind"] = "string"


def _reworded(about: dict[str, Any], entry: dict[str, Any], defn: dict[str, Any]) -> None:
    _setting(defn["settings"], "timezone")["description"] = "Zone."


def _option_removed(about: dict[str, Any], entry: dict[str, Any], defn: dict[str, Any]) -> None:
    about["settings"]["properties"]["sync_mode"]["enum"] = ["modified"]


def _setting_added(about: dict[str, Any], entry: dict[str, Any], defn: dict[str, Any]) -> None:
    # What happens when a setting is added to the code only (e.g. a new `ledger_uri`).
    about["settings"]["properties"]["ledger_uri"] = {"type": ["string", "null"], "description": "x"}


def _not_required(about: dict[str, Any], entry: dict[str, Any], defn: dict[str, Any]) -> None:
    about["settings"]["required"].remove("password")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_new_default, "definition: page_size default 1000"),
        (_not_sensitive, "meltano.yml: password sensitive=False"),
        (_other_kind, "meltano.yml: lookback_hours kind 'string'"),
        (_reworded, "definition: timezone description"),
        (_option_removed, "sync_mode options"),
        (_setting_added, "ledger_uri"),
        (_not_required, "settings_group_validation"),
    ],
    ids=["default", "sensitive", "kind", "description", "options", "added", "required"],
)
def test_a_disagreement_is_reported(mutate: Any, expected: str) -> None:
    about, builtins, entry, defn = _tap_factusol()
    assert plugin_docs.settings_disagreements(about, builtins, entry, defn) == []
    mutate(about, entry, defn)
    problems = plugin_docs.settings_disagreements(about, builtins, entry, defn)
    assert any(expected in p for p in problems), problems


def test_an_added_setting_is_reported_for_both_files() -> None:
    about, builtins, entry, defn = _tap_factusol()
    _setting_added(about, entry, defn)
    problems = plugin_docs.settings_disagreements(about, builtins, entry, defn)
    assert any(p.startswith("definition settings") for p in problems), problems
    assert any(p.startswith("meltano.yml settings") for p in problems), problems


def test_missing_readme_markers_are_an_error() -> None:
    with pytest.raises(ValueError, match="plugin_docs:settings:start"):
        plugin_docs.replace_between("# README\n", "settings", "table", where="README.md")


def test_the_script_check_mode_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert plugin_docs.main(["--check"]) == 0, capsys.readouterr().out
