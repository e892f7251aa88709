"""The connectors' plugin definitions, meltano.yml entries, `--about` and READMEs agree, and
they give the route that works: `make dist`'s wheel while the project has no public address,
the git route pinned to the release tag once it has one.

Fast and in-process: `--about` comes from the connector classes (what the CLI prints), no
network, no build (but for one e2e test comparing with `make dist`'s output). When a setting
changes, `scripts/plugin_docs.py --write` regenerates the definitions and README blocks; these
tests say what is stale or contradictory.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT, ConnectorDist, dist_script, plugin_docs

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


#: An address no one owns, for the git route (the project has no public one yet).
FAKE_REPO = "https://git.example.org/acme/fcsync"
#: The placeholder organisation the first drafts named: spelt in two parts so that this file
#: does not hold it either.
PLACEHOLDER = "-".join(("your", "org"))


def _dist_wheel(connector: Any) -> str:
    return f"{connector.name.replace('-', '_')}-{plugin_docs.release_version()}-py3-none-any.whl"


@pytest.mark.parametrize("connector", CONNECTORS, ids=IDS)
def test_without_an_address_the_definition_and_readme_give_the_dist_route(
    connector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugin_docs, "repository_url", lambda: None)
    prefix = dist_script.DEFAULT_PIP_PREFIX
    defn = plugin_docs.definition(connector)
    assert "repo" not in defn
    assert "docs" not in defn
    assert defn["pip_url"] == f"{prefix}/{_dist_wheel(connector)}"
    # the committed definition's folder is the one make dist copies it from
    assert connector.definition_path.parent.name == dist_script.CONNECTORS[connector.name]
    header = plugin_docs.render_definition(connector).split("\nname: ", 1)[0]
    assert f"--from-ref {prefix}/{connector.name}.yml" in header
    block = plugin_docs.install_block(connector)
    assert f"cp -r dist /path/to/my-project/{prefix.removeprefix('./')}" in block
    command = f"meltano add --plugin-type {connector.singular} {connector.name}"
    assert f"{command} --from-ref {prefix}/{connector.name}.yml" in block
    assert f"pip_url: {prefix}/{_dist_wheel(connector)}" in block
    assert "appears here once the project has a public address and a release tag" in block
    assert "git+http" not in block
    assert "raw.githubusercontent" not in block
    with pytest.raises(LookupError, match="no git route"):
        plugin_docs.pip_url(connector)


@pytest.mark.parametrize("connector", CONNECTORS, ids=IDS)
def test_with_an_address_the_git_route_is_pinned_to_the_release_tag(
    connector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugin_docs, "repository_url", lambda: FAKE_REPO)
    tag = f"v{plugin_docs.release_version()}"
    defn = plugin_docs.definition(connector)
    assert defn["repo"] == FAKE_REPO
    assert defn["docs"] == f"{FAKE_REPO}/blob/main/{connector.directory}/README.md"
    urls = defn["pip_url"].split()
    subdirs = [u.split("#subdirectory=")[1] for u in urls]
    libraries = plugin_docs.library_dirs(connector)
    assert libraries, "every connector needs at least one of our libraries"
    assert subdirs == [*libraries, connector.directory]
    assert all(u.startswith(f"git+{FAKE_REPO}@{tag}#subdirectory=") for u in urls)
    for subdir in subdirs:
        assert (ROOT / subdir / "pyproject.toml").exists(), subdir
    # The README shows the pinned pip_url, the unpinned one and the --from-ref command.
    block = plugin_docs.install_block(connector)
    assert " ".join(urls) in block
    assert " ".join(u.replace(f"@{tag}#", "#") for u in urls) in block
    definition = connector.definition_path.relative_to(ROOT).as_posix()
    assert f"--from-ref {FAKE_REPO}/raw/{tag}/{definition}" in block
    assert "make dist" not in block


def test_the_git_route_names_every_library_make_dist_bundles() -> None:
    # pip finds none of our libraries on an index: each one must be in the git pip_url.
    for connector in CONNECTORS:
        assert plugin_docs.library_dirs(connector) == list(
            dist_script.plan(connector.directory).libraries
        )


def test_raw_url_of_github_and_of_other_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugin_docs, "repository_url", lambda: "https://github.com/acme/fcsync")
    assert plugin_docs.raw_url("plugins/x.yml", "v1.0.0") == (
        "https://raw.githubusercontent.com/acme/fcsync/v1.0.0/plugins/x.yml"
    )
    monkeypatch.setattr(plugin_docs, "repository_url", lambda: FAKE_REPO)
    assert plugin_docs.raw_url("plugins/x.yml", "v1.0.0") == (
        f"{FAKE_REPO}/raw/v1.0.0/plugins/x.yml"
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("", None),
        ("[tool.fcsync]\n", None),
        ('[tool.fcsync]\nrepository = ""\n', None),
        ('[tool.fcsync]\nrepository = "  "\n', None),
        (
            '[tool.fcsync]\nrepository = "https://github.com/acme/fcsync.git"\n',
            "https://github.com/acme/fcsync",
        ),
        ('[tool.fcsync]\nrepository = "https://git.example.org/acme/fcsync/"\n', FAKE_REPO),
    ],
    ids=["no-table", "no-key", "empty", "blank", "dot-git", "slash"],
)
def test_the_repository_url_may_be_absent_or_empty(
    tmp_path: Path, table: str, expected: str | None
) -> None:
    (tmp_path / "pyproject.toml").write_text(table, encoding="utf-8")
    assert plugin_docs.repository_url(tmp_path) == expected


def test_project_urls_follow_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    text = '[project]\nname = "x"\n\n[project.urls]\nHomepage = "https://old"\n\n[tool.x]\na = 1\n'
    monkeypatch.setattr(plugin_docs, "repository_url", lambda: None)
    assert plugin_docs.render_pyproject("tap-factusol", text) == (
        '[project]\nname = "x"\n\n[tool.x]\na = 1\n'
    )
    bare = '[project]\nname = "x"\n'
    assert plugin_docs.render_pyproject("tap-factusol", bare) == bare
    monkeypatch.setattr(plugin_docs, "repository_url", lambda: FAKE_REPO)
    regenerated = plugin_docs.render_pyproject("tap-factusol", bare)
    assert f'Repository = "{FAKE_REPO}"' in regenerated
    assert f'Changelog = "{FAKE_REPO}/blob/main/tap-factusol/CHANGELOG.md"' in regenerated


def test_no_placeholder_organisation_in_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    holding = []
    for name in tracked:
        try:
            if PLACEHOLDER in (ROOT / name).read_text(encoding="utf-8"):
                holding.append(name)
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
    assert holding == []


def test_the_repository_url_lives_in_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """Setting an address regenerates every file that should name it, and only those."""
    monkeypatch.setattr(plugin_docs, "repository_url", lambda: FAKE_REPO)
    with_address = plugin_docs.generated_files()
    for connector in CONNECTORS:
        assert FAKE_REPO in with_address[connector.definition_path]
        assert FAKE_REPO in with_address[connector.readme_path]
    for directory in plugin_docs.SHIPPED:
        assert FAKE_REPO in with_address[ROOT / directory / "pyproject.toml"], directory
    monkeypatch.setattr(plugin_docs, "repository_url", lambda: None)
    without = plugin_docs.generated_files()
    assert set(without) == set(with_address)
    holding = [str(path.relative_to(ROOT)) for path, text in without.items() if FAKE_REPO in text]
    assert holding == []
    assert not [p for p, text in without.items() if "[project.urls]" in text]


def test_a_missing_release_tag_is_named_only_for_the_git_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plugin_docs, "release_version", lambda: "999.0.0")
    monkeypatch.setattr(plugin_docs, "repository_url", lambda: None)
    assert plugin_docs.missing_release_tag() is None
    monkeypatch.setattr(plugin_docs, "repository_url", lambda: FAKE_REPO)
    assert plugin_docs.missing_release_tag() == "v999.0.0"


@pytest.mark.e2e
@pytest.mark.parametrize("connector", CONNECTORS, ids=IDS)
def test_without_an_address_the_committed_definition_is_make_dists(
    connector_dist: ConnectorDist, connector: Any
) -> None:
    """`make dist` (default DIST_PREFIX) writes the committed definition, pip_url included."""
    if plugin_docs.repository_url() is not None:
        pytest.skip("the committed definitions give the git route")
    written = connector_dist.definitions[connector.name].read_text(encoding="utf-8")
    assert yaml.safe_load(written) == _definition_file(connector)
    assert connector_dist.wheels[connector.name].name == _dist_wheel(connector)


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
