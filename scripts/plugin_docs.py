"""Regenerate (--write) or verify (--check) everything derived from the connectors' `--about`.

Derived, per connector:
- its Meltano Hub-style plugin definition, `plugins/<extractors|loaders>/<name>.yml`;
- in its README, the settings table (`--about --format=markdown`) and the install block (the
  `pip_url` a user writes in another Meltano project), each between `plugin_docs` markers;
and, per shipped package, the `[project.urls]` table of its pyproject.toml.

Sources: the connector class (`--about`, loaded in-process, so run this with the repository's
venv), its `meltano.yml` entry (namespace, executable, capabilities, option labels), its
pyproject.toml (version, the libraries it needs), scripts/dist.py (`make dist`'s wheel path) and
the repository URL, kept in one place: `[tool.fcsync] repository` in the root pyproject.toml.

That URL may be empty or absent: the project has no public address yet. Then nothing names a
repository: the definitions have no `repo`/`docs` and their `pip_url` is the wheel `make dist`
builds (`./fcsync/<wheel>`, what scripts/dist.py writes), the README install blocks document
that route, and no pyproject.toml has a `[project.urls]` table. With a URL, the definitions and
READMEs give the git route, `git+<url>@v<version>#subdirectory=<dir>` per package, and the
pyproject files get their URLs; the tag `v<version>` must then be pushed before the docs are
published (root README, *Versioning*), and `--check` warns while it does not exist locally.

    .venv/bin/python scripts/plugin_docs.py --write   # after changing settings or the URL
    .venv/bin/python scripts/plugin_docs.py --check   # exit 1, listing what is stale or wrong

`--check` also reports what the script cannot fix: a `meltano.yml` entry that disagrees with
`--about`, packages with different versions, an internal dependency range that excludes the
release version, a stale LICENSE copy.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import io
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _load_dist_script() -> ModuleType:
    """scripts/dist.py, under the name the packaging tests give it (`dist` is too common)."""
    name = "fcsync_dist_script"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "dist.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


#: `make dist` (scripts/dist.py): its wheel path and definition layout are its own, not copies.
dist = _load_dist_script()

#: Libraries, by distribution name -> directory (one not created yet is skipped).
LIBRARIES = {
    "fcsync-factusol-api": "packages/factusol_api",
    "fcsync-clientify-api": "packages/clientify_api",
    "fcsync-customer-sync": "packages/customer_sync",
    "fcsync-sync-ledger": "packages/sync_ledger",
    "fcsync-sync-report": "packages/sync_report",
    "fcsync-sync-activation": "packages/sync_activation",
    "fcsync-target-runtime": "packages/target_runtime",
    "fcsync-customer-records": "packages/customer_records",
}
SANDBOX = "fcsync-sandbox"


@dataclass(frozen=True)
class Connector:
    name: str
    plugin_type: str  # "extractors" | "loaders"
    cls_path: str  # "module:Class"
    label: str
    domain_url: str
    keywords: tuple[str, ...]

    @property
    def directory(self) -> str:
        return self.name

    @property
    def definition_path(self) -> Path:
        return ROOT / "plugins" / self.plugin_type / f"{self.name}.yml"

    @property
    def readme_path(self) -> Path:
        return ROOT / self.directory / "README.md"

    @property
    def singular(self) -> str:
        return self.plugin_type.removesuffix("s")


CONNECTORS = (
    Connector(
        "tap-factusol",
        "extractors",
        "tap_factusol.tap:TapFactusol",
        "FactuSOL",
        "https://www.sdelsol.com",
        ("meltano_sdk", "factusol", "invoicing", "erp"),
    ),
    Connector(
        "tap-clientify",
        "extractors",
        "tap_clientify.tap:TapClientify",
        "Clientify",
        "https://clientify.com",
        ("meltano_sdk", "clientify", "crm"),
    ),
    Connector(
        "target-clientify",
        "loaders",
        "target_clientify.target:TargetClientify",
        "Clientify (from FactuSOL clients)",
        "https://clientify.com",
        ("meltano_sdk", "clientify", "crm", "factusol"),
    ),
    Connector(
        "target-factusol",
        "loaders",
        "target_factusol.target:TargetFactusol",
        "FactuSOL (from Clientify contacts)",
        "https://www.sdelsol.com",
        ("meltano_sdk", "factusol", "invoicing", "clientify"),
    ),
)
SHIPPED = tuple(
    directory
    for directory in (*LIBRARIES.values(), *(c.directory for c in CONNECTORS))
    if (ROOT / directory / "pyproject.toml").exists()
)

#: Words written in capitals in generated setting labels.
ACRONYMS = {w: w.upper() for w in ("api", "url", "uri", "id", "nif", "iso", "sql", "http")}
#: Labels that a name cannot spell (Spanish words of FactuSOL's own vocabulary).
LABELS = {
    "codigo_fabricante": "Código de fabricante (developer code)",
    "codigo_cliente": "Código de cliente (customer code)",
    "base_datos": "Base de datos (company database id)",
    "ejercicio": "Ejercicio (fiscal year)",
}

MARKERS = {
    "settings": ("<!-- plugin_docs:settings:start -->", "<!-- plugin_docs:settings:end -->"),
    "install": ("<!-- plugin_docs:install:start -->", "<!-- plugin_docs:install:end -->"),
}
GENERATED_NOTE = "<!-- Generated by scripts/plugin_docs.py --write; do not edit by hand. -->"


# ------------------------------------------------------------------------------- sources


def read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        data: dict[str, Any] = tomllib.load(fh)
    return data


def repository_url(root: Path = ROOT) -> str | None:
    """The public repository, from `[tool.fcsync] repository` in the root pyproject.toml; None
    while the project has none (the key empty or absent)."""
    table = read_toml(root / "pyproject.toml").get("tool", {}).get("fcsync", {})
    url = str(table.get("repository") or "").strip()
    return url.rstrip("/").removesuffix(".git") or None


def _repository() -> str:
    """The repository URL, for what only the git route generates."""
    repo = repository_url()
    if repo is None:
        msg = "[tool.fcsync] repository is not set: there is no git route"
        raise LookupError(msg)
    return repo


def project(directory: str) -> dict[str, Any]:
    """The `[project]` table of a package's pyproject.toml."""
    table: dict[str, Any] = read_toml(ROOT / directory / "pyproject.toml")["project"]
    return table


def release_version() -> str:
    """The version all shipped packages share (the first one's; `check` reports a mismatch)."""
    return str(project(SHIPPED[0])["version"])


def library_dirs(connector: Connector) -> list[str]:
    """Directories of the libraries a connector needs, followed transitively as `make dist`
    does (pip finds none of them on an index, so a git route must name each), dependency
    order."""
    return list(dist.plan(connector.directory, ROOT).libraries)


def release_tag() -> str:
    return f"v{release_version()}"


def missing_release_tag() -> str | None:
    """The release tag the git route names, when this clone lacks it (None: present, or no git
    route, or no git here)."""
    if repository_url() is None:
        return None
    tag = release_tag()
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--quiet", "--verify", f"refs/tags/{tag}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return None
    return tag if proc.returncode == 1 else None


def meltano_entry(connector: Connector, meltano_yml: Path = ROOT / "meltano.yml") -> dict[str, Any]:
    spec = yaml.safe_load(meltano_yml.read_text(encoding="utf-8"))
    for plugin in spec["plugins"][connector.plugin_type]:
        if plugin["name"] == connector.name:
            entry: dict[str, Any] = plugin
            return entry
    msg = f"{connector.name} is not in meltano.yml plugins.{connector.plugin_type}"
    raise LookupError(msg)


def plugin_class(connector: Connector) -> Any:
    module, _, attr = connector.cls_path.partition(":")
    return getattr(importlib.import_module(module), attr)


def about_output(connector: Connector, fmt: str) -> str:
    """Exactly what `<connector> --about --format=<fmt>` prints, produced in-process."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        plugin_class(connector).print_about(fmt)
    return buffer.getvalue()


def about_json(connector: Connector) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(about_output(connector, "json"))
    return data


def builtin_settings(connector: Connector) -> list[str]:
    """Settings the SDK adds for the plugin's capabilities (stream maps, flattening, ...)."""
    schema: dict[str, Any] = {"type": "object", "properties": {}}
    plugin_class(connector).append_builtin_config(schema)
    return list(schema["properties"])


# ------------------------------------------------------------------------------- derived


def setting_kind(schema: dict[str, Any]) -> str:
    """Meltano setting kind of a JSON schema property."""
    if "enum" in schema:
        return "options"
    types = schema.get("type", "string")
    types = [t for t in ([types] if isinstance(types, str) else types) if t != "null"]
    kind = types[0] if len(types) == 1 else "string"
    if kind == "string" and schema.get("format") in ("date-time", "date"):
        return "date_iso8601"
    return {"number": "decimal"}.get(kind, kind)


def setting_label(name: str, schema: dict[str, Any]) -> str:
    if name in LABELS:
        return LABELS[name]
    if schema.get("title"):
        return str(schema["title"])
    words = [ACRONYMS.get(word, word) for word in name.split("_")]
    first = words[0] if words[0].isupper() else words[0].capitalize()
    return " ".join([first, *words[1:]])


def option_label(value: str) -> str:
    return value.replace("-", " ").replace("_", " ").capitalize()


def pip_url(connector: Connector, ref: str | None = None) -> str:
    """`git+` URLs of the libraries, then the connector, space-separated, optionally at `ref`."""
    repo, at = _repository(), f"@{ref}" if ref else ""
    dirs = [*library_dirs(connector), connector.directory]
    return " ".join(f"git+{repo}{at}#subdirectory={d}" for d in dirs)


def wheel_name(connector: Connector) -> str:
    """The file name of the connector's `make dist` wheel (pure Python: `py3-none-any`)."""
    table = project(connector.directory)
    name = canonicalize_name(table["name"]).replace("-", "_")
    return f"{name}-{table['version']}-py3-none-any.whl"


def dist_pip_url(connector: Connector) -> str:
    """The `pip_url` scripts/dist.py writes for the wheel at its default prefix."""
    return f"{dist.DEFAULT_PIP_PREFIX.rstrip('/')}/{wheel_name(connector)}"


def dist_definition_ref(connector: Connector) -> str:
    """Where `make dist`'s copy of the definition is, from the Meltano project's root."""
    return f"{dist.DEFAULT_PIP_PREFIX.rstrip('/')}/{connector.name}.yml"


def raw_url(path: str, ref: str) -> str:
    """Download URL of a file of the repository at `ref` (GitHub's raw host, else `/raw/`)."""
    repo = _repository()
    if repo.startswith("https://github.com/"):
        return repo.replace("https://github.com/", "https://raw.githubusercontent.com/", 1) + (
            f"/{ref}/{path}"
        )
    return f"{repo}/raw/{ref}/{path}"


def definition(connector: Connector) -> dict[str, Any]:
    """The plugin definition, in Meltano Hub's shape, from `--about` and meltano.yml."""
    about = about_json(connector)
    entry = meltano_entry(connector)
    curated = {s["name"]: s for s in entry.get("settings", [])}
    repo = repository_url()
    # No public address: no link to a repository, and the wheel of `make dist` to install.
    links = (
        {"repo": repo, "docs": f"{repo}/blob/main/{connector.directory}/README.md"} if repo else {}
    )
    settings = []
    for name, schema in about["settings"]["properties"].items():
        setting: dict[str, Any] = {
            "name": name,
            "label": setting_label(name, schema),
            "kind": setting_kind(schema),
        }
        if "description" in schema:
            setting["description"] = schema["description"]
        if "default" in schema:
            setting["value"] = schema["default"]
        if setting["kind"] == "options":
            labels = {o["value"]: o.get("label") for o in curated.get(name, {}).get("options", [])}
            setting["options"] = [
                {"label": labels.get(v) or option_label(str(v)), "value": v} for v in schema["enum"]
            ]
        setting["sensitive"] = bool(schema.get("secret"))
        settings.append(setting)
    required = list(about["settings"].get("required", []))
    return {
        "name": connector.name,
        "namespace": entry["namespace"],
        "label": connector.label,
        # Hub descriptions are one line: the docstring's first paragraph.
        "description": " ".join(
            inspect.cleandoc(about["description"] or "").split("\n\n")[0].split()
        ),
        "maintenance_status": "development",
        "domain_url": connector.domain_url,
        **links,
        "keywords": list(connector.keywords),
        "pip_url": pip_url(connector, release_tag()) if repo else dist_pip_url(connector),
        "executable": entry.get("executable", connector.name),
        "capabilities": list(entry["capabilities"]),
        "settings_group_validation": [required] if required else [],
        "settings": settings,
    }


def render_definition(connector: Connector) -> str:
    header = (
        f"# Meltano Hub-style definition of {connector.name}. Generated by\n"
        "# `scripts/plugin_docs.py --write` from its --about, its meltano.yml entry and its\n"
        "# pyproject.toml: do not edit by hand."
    )
    if repository_url():
        header += (
            " Use it in any Meltano project with\n"
            f"#   meltano add --plugin-type {connector.singular} {connector.name} \\\n"
            "#     --from-ref <this file's path or URL>\n"
        )
    else:
        prefix = dist.DEFAULT_PIP_PREFIX
        # Why this pip_url: the dev route (meltano.yml's `-e ./...`) only works inside the clone.
        header += (
            "\n# No public address or release tag yet, so no git route, and our libraries are on\n"
            "# no index: pip_url is the one wheel `make dist` builds, read from"
            f" {prefix}/ (its default\n"
            "# DIST_PREFIX; meltano.yml's `-e ./...` dev route works inside the clone only).\n"
            "# `make dist` writes this definition next to the wheel: copy dist/ to"
            f" {prefix} in your\n"
            "# Meltano project, then from its root:\n"
            f"#   meltano add --plugin-type {connector.singular} {connector.name} \\\n"
            f"#     --from-ref {dist_definition_ref(connector)}\n"
        )
    body: str = yaml.safe_dump(
        definition(connector), sort_keys=False, allow_unicode=True, width=100
    )
    return header + body


def settings_table(connector: Connector) -> str:
    """The settings table of `--about --format=markdown` (from its header to its last row)."""
    lines = about_output(connector, "markdown").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Setting "))
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[start:end])


def install_block(connector: Connector) -> str:
    """The README's install block: the git route with a repository URL, else `make dist`'s."""
    if repository_url() is None:
        return dist_install_block(connector)
    tag = release_tag()
    rel = connector.definition_path.relative_to(ROOT).as_posix()
    return "\n".join(
        [
            "Add it to any Meltano (4.4 or later) project from its plugin definition, pinned to"
            " a release tag:",
            "",
            "```bash",
            f"meltano add --plugin-type {connector.singular} {connector.name} \\",
            f"  --from-ref {raw_url(rel, tag)}",
            "```",
            "",
            f"The definition (`{rel}` in this repository) installs the connector and the"
            " libraries it needs straight from the repository: one `git+` URL per package,"
            " space-separated, each with `#subdirectory=`. Its `pip_url`:",
            "",
            "```yaml",
            f"pip_url: {pip_url(connector, tag)}",
            "```",
            "",
            f"`@{tag}` pins the release tag (the same in every URL: the libraries and the"
            " connector are released together, see *Versioning* in the root README). Put another"
            " tag, a branch or a commit after `@`, or follow `main` with:",
            "",
            "```yaml",
            f"pip_url: {pip_url(connector)}",
            "```",
        ]
    )


def dist_install_block(connector: Connector) -> str:
    """The `make dist` route, with the paths scripts/dist.py writes at its default prefix."""
    prefix = dist.DEFAULT_PIP_PREFIX
    rel = connector.definition_path.relative_to(ROOT).as_posix()
    return "\n".join(
        [
            "The project has no public address yet (`[tool.fcsync] repository` in the root"
            " `pyproject.toml` is empty), so the route is `make dist`: in a clone, then in your"
            " Meltano (4.4 or later) project:",
            "",
            "```bash",
            f"make dist && cp -r dist /path/to/my-project/{prefix.removeprefix('./')}"
            "   # in the clone",
            "cd /path/to/my-project",
            f"meltano add --plugin-type {connector.singular} {connector.name}"
            f" --from-ref {dist_definition_ref(connector)}",
            "```",
            "",
            f"The definition `make dist` writes next to the wheel (`{rel}` in this repository,"
            " the same but for its header) installs that one wheel:",
            "",
            "```yaml",
            f"pip_url: {dist_pip_url(connector)}",
            "```",
            "",
            "A git route (`pip_url: git+<repository>@<tag>#subdirectory=...`) appears here once"
            " the project has a public address and a release tag.",
        ]
    )


def replace_between(text: str, block: str, content: str, *, where: str) -> str:
    start, end = MARKERS[block]
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        msg = f"{where}: markers {start} ... {end} not found"
        raise ValueError(msg)
    replacement = f"{start}\n{GENERATED_NOTE}\n\n{content}\n\n{end}"
    return pattern.sub(lambda _: replacement, text, count=1)


def render_readme(connector: Connector, text: str) -> str:
    where = connector.readme_path.relative_to(ROOT).as_posix()
    text = replace_between(text, "settings", settings_table(connector), where=where)
    return replace_between(text, "install", install_block(connector), where=where)


def urls_table(directory: str) -> str:
    repo = _repository()
    rows = {
        "Homepage": repo,
        "Documentation": f"{repo}/blob/main/{directory}/README.md",
        "Repository": repo,
        "Issues": f"{repo}/issues",
    }
    if (ROOT / directory / "CHANGELOG.md").exists():
        rows["Changelog"] = f"{repo}/blob/main/{directory}/CHANGELOG.md"
    lines = ["[project.urls]", *(f'{key} = "{value}"' for key, value in rows.items())]
    return "\n".join(lines) + "\n"


def render_pyproject(directory: str, text: str) -> str:
    """The pyproject text with its `[project.urls]` table regenerated (added when missing), or
    removed while there is no repository URL (no link a stranger could follow)."""
    pattern = re.compile(r"^\[project\.urls\]\n(?:(?!\[).*\n?)*", re.MULTILINE)
    if repository_url() is None:
        return pattern.sub("", text, count=1).rstrip("\n") + "\n"
    table = urls_table(directory)
    if pattern.search(text):
        return pattern.sub(lambda _: table + "\n", text, count=1).rstrip("\n") + "\n"
    return text.rstrip("\n") + "\n\n" + table


def generated_files() -> dict[Path, str]:
    """Every derived file with the content it should have."""
    files: dict[Path, str] = {}
    for connector in CONNECTORS:
        files[connector.definition_path] = render_definition(connector)
        readme = connector.readme_path.read_text(encoding="utf-8")
        files[connector.readme_path] = render_readme(connector, readme)
    for directory in SHIPPED:
        path = ROOT / directory / "pyproject.toml"
        files[path] = render_pyproject(directory, path.read_text(encoding="utf-8"))
    return files


# ------------------------------------------------------------------------------- checks


def _options(setting: dict[str, Any]) -> list[Any]:
    return [o["value"] for o in setting.get("options", [])]


def _compare(
    where: str, setting: dict[str, Any], name: str, schema: dict[str, Any]
) -> Iterable[str]:
    kind = setting.get("kind", "string")
    if kind != setting_kind(schema):
        yield f"{where}: {name} kind {kind!r}, --about says {setting_kind(schema)!r}"
    if setting.get("value") != schema.get("default") or (
        ("value" in setting) != ("default" in schema)
    ):
        yield (
            f"{where}: {name} default {setting.get('value')!r}, "
            f"--about says {schema.get('default')!r}"
        )
    if bool(setting.get("sensitive")) != bool(schema.get("secret")):
        yield (
            f"{where}: {name} sensitive={bool(setting.get('sensitive'))}, "
            f"--about secret={bool(schema.get('secret'))}"
        )
    if setting.get("description") != schema.get("description"):
        yield f"{where}: {name} description differs from --about's"
    if kind == "options" and _options(setting) != list(schema.get("enum", [])):
        yield f"{where}: {name} options {_options(setting)}, --about allows {schema.get('enum')}"


def settings_disagreements(
    about: dict[str, Any],
    builtins: Iterable[str],
    entry: dict[str, Any],
    defn: dict[str, Any],
) -> list[str]:
    """Where a definition, a meltano.yml entry and `--about` disagree on the settings.

    The definition lists every `--about` setting in its order; meltano.yml lists the
    connector's own settings (all but the SDK's built-ins), in the same order. Both must agree
    with `--about` on kind, default, sensitivity, description and allowed values.
    """
    problems: list[str] = []
    properties: dict[str, Any] = about["settings"]["properties"]
    own = [name for name in properties if name not in set(builtins)]
    defined = [s["name"] for s in defn.get("settings", [])]
    if defined != list(properties):
        problems.append(f"definition settings {defined} != --about settings {list(properties)}")
    declared = [s["name"] for s in entry.get("settings", [])]
    if declared != own:
        problems.append(f"meltano.yml settings {declared} != the connector's own settings {own}")
    for where, settings in (
        ("definition", defn.get("settings", [])),
        ("meltano.yml", entry.get("settings", [])),
    ):
        for setting in settings:
            if setting["name"] in properties:
                problems += _compare(where, setting, setting["name"], properties[setting["name"]])
    required = list(about["settings"].get("required", []))
    if defn.get("settings_group_validation") != ([required] if required else []):
        problems.append(
            f"definition settings_group_validation {defn.get('settings_group_validation')}"
            f" != --about required {required}"
        )
    for key in ("namespace", "executable", "capabilities"):
        if defn.get(key) != entry.get(key):
            problems.append(f"{key}: definition {defn.get(key)!r}, meltano.yml {entry.get(key)!r}")
    unknown = set(defn.get("capabilities", [])) - set(about["capabilities"])
    if unknown:
        problems.append(f"capabilities {sorted(unknown)} are not reported by --about")
    return problems


def pip_url_disagreements(connector: Connector, entry: dict[str, Any]) -> list[str]:
    """meltano.yml installs the same packages (editable, from the clone) as the definition."""
    local = [p.removeprefix("./") for p in entry["pip_url"].split() if p != "-e"]
    wanted = [*library_dirs(connector), connector.directory]
    if sorted(local) != sorted(wanted):
        return [f"meltano.yml pip_url installs {local}, the definition {wanted}"]
    return []


def package_problems() -> list[str]:
    """Versions, internal dependency ranges, the sandbox, LICENSE copies."""
    problems: list[str] = []
    version = release_version()
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    for directory in SHIPPED:
        table = project(directory)
        if table["version"] != version:
            problems.append(f"{directory}: version {table['version']} != {version}")
        deps = [*table.get("dependencies", [])]
        for extra in table.get("optional-dependencies", {}).values():
            deps += extra
        for dep in deps:
            req = Requirement(dep)
            if req.name == SANDBOX:
                problems.append(f"{directory}: depends on {SANDBOX}, which is never shipped")
            if not str(req.specifier):
                problems.append(f"{directory}: {req.name} has no version range")
            if any(spec.operator in ("==", "===") for spec in req.specifier):
                problems.append(f"{directory}: {req.name} is pinned ({req.specifier})")
            if req.name in LIBRARIES and not req.specifier.contains(version):
                problems.append(f"{directory}: {dep} excludes the release version {version}")
        license_copy = ROOT / directory / "LICENSE"
        if not license_copy.exists() or license_copy.read_text(encoding="utf-8") != license_text:
            problems.append(f"{directory}/LICENSE is missing or differs from the root LICENSE")
    return problems


def problems_beyond_files() -> list[str]:
    problems = package_problems()
    for connector in CONNECTORS:
        entry = meltano_entry(connector)
        found = settings_disagreements(
            about_json(connector), builtin_settings(connector), entry, definition(connector)
        )
        found += pip_url_disagreements(connector, entry)
        problems += [f"{connector.name}: {p}" for p in found]
    return problems


def stale_files() -> list[Path]:
    return [
        path
        for path, content in generated_files().items()
        if not path.exists() or path.read_text(encoding="utf-8") != content
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate the derived files")
    mode.add_argument("--check", action="store_true", help="exit 1 when anything is stale")
    args = parser.parse_args(argv)
    if args.write:
        for path, content in generated_files().items():
            if not path.exists() or path.read_text(encoding="utf-8") != content:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content, encoding="utf-8")
                print(f"wrote {path.relative_to(ROOT)}")
    stale = stale_files()
    for path in stale:
        print(f"stale: {path.relative_to(ROOT)} (run scripts/plugin_docs.py --write)")
    tag = missing_release_tag()
    if tag:
        # Not fatal: a release commit is written before it is tagged (root README, Versioning).
        print(f"warning: the git route names tag {tag}, which this clone lacks: create and push it")
    problems = problems_beyond_files()
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if stale or problems else 0


if __name__ == "__main__":
    sys.exit(main())
