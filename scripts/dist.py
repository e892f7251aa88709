"""`make dist`: one self-contained wheel per connector, and its plugin definition, in dist/.

    .venv/bin/python scripts/dist.py [--out dist] [--pip-prefix ./plugins/fcsync] [NAME ...]

Our libraries (packages/*, dist names `fcsync-*`) are on no package index, and their names are
free for anyone to register there. So a connector is shipped as ONE wheel that carries the code
of every library it needs (its dependencies on them, followed transitively, with extras): their
modules and console scripts are copied in, and the connector's `Requires-Dist` names only
third-party distributions from PyPI (the libraries' own requirements take their place). Nothing a
user installs names an unregistered distribution, so no index can substitute one.

The libraries are found, not listed: every `pyproject.toml` of the repository's top level and of
`packages/` is a distribution of ours, so a new library under packages/ is bundled as soon as a
connector's `dependencies` name it.

Next to each wheel, `<connector>.yml` is the connector's plugin definition
(`plugins/<type>/<name>.yml`) with `pip_url` pointing at that wheel as
`<pip-prefix>/<wheel file>`: the path, relative to the Meltano project's root, where the user
puts the dist directory (default `./fcsync`, i.e. `cp -r dist <project>/fcsync`).

The repository's own development install is untouched (meltano.yml's `-e ./packages/... -e
./tap-...`, requirements-dev.txt): bundling happens only here, on built wheels.

Each wheel (library or connector) is built with `python -m build --wheel` (an isolated build, as
pip would do). The merged wheel keeps the connector's name and version, and a fresh RECORD.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
#: The connectors, each with the folder of its committed plugin definition.
CONNECTORS = {
    "tap-factusol": "extractors",
    "tap-clientify": "extractors",
    "target-clientify": "loaders",
    "target-factusol": "loaders",
}
DEFAULT_PIP_PREFIX = "./fcsync"

#: Builds the wheel of the package in a repository directory; returns its path.
WheelBuilder = Callable[[str], Path]


def _pyproject(directory: Path) -> dict[str, Any]:
    with (directory / "pyproject.toml").open("rb") as fh:
        data: dict[str, Any] = tomllib.load(fh)
    return data


def repository_distributions(root: Path = ROOT) -> dict[str, str]:
    """Every distribution of the repository: canonical name -> directory relative to `root`."""
    found: dict[str, str] = {}
    for path in sorted([*root.glob("*/pyproject.toml"), *root.glob("packages/*/pyproject.toml")]):
        name = _pyproject(path.parent).get("project", {}).get("name")
        if name:
            found[canonicalize_name(name)] = path.parent.relative_to(root).as_posix()
    return found


@dataclass
class Bundle:
    """What a connector's wheel must carry: libraries (with the extras asked of them) and the
    third-party requirements that replace the dependencies on them."""

    connector: str
    libraries: dict[str, set[str]] = field(default_factory=dict)  # directory -> extras
    requires: list[str] = field(default_factory=list)  # third-party, normalized, in order


def plan(connector_dir: str, root: Path = ROOT) -> Bundle:
    """The libraries a connector needs, transitively, and its third-party requirements."""
    ours = repository_distributions(root)
    bundle = Bundle(connector_dir)

    def visit(directory: str, extras: set[str]) -> None:
        table = _pyproject(root / directory)["project"]
        deps = list(table.get("dependencies", []))
        for extra in sorted(extras):
            deps += table.get("optional-dependencies", {}).get(extra, [])
        for dep in deps:
            req = Requirement(dep)
            name = canonicalize_name(req.name)
            if name in ours:
                lib = ours[name]
                if lib == connector_dir:
                    continue
                known = bundle.libraries.get(lib)
                if known is not None and req.extras <= known:
                    continue  # already bundled with these extras
                bundle.libraries[lib] = (known or set()) | set(req.extras)
                visit(lib, bundle.libraries[lib])
            elif str(req) not in bundle.requires:
                bundle.requires.append(str(req))

    visit(connector_dir, set())
    return bundle


# ------------------------------------------------------------------------------- wheels


def build_wheel(directory: str, outdir: Path, root: Path = ROOT) -> Path:
    """`python -m build --wheel` of one package into `outdir/<directory>`; the wheel's path."""
    out = outdir / directory.replace("/", "_")
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(root / directory)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        msg = f"build of {directory} failed:\n{(proc.stdout + proc.stderr)[-3000:]}"
        raise RuntimeError(msg)
    (wheel,) = out.glob("*.whl")
    return wheel


def _dist_info(names: Iterable[str]) -> str:
    (info,) = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    return info


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _entry_points(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if re.fullmatch(r"\[.+\]", line.strip()):
            current = line.strip()[1:-1]
            sections.setdefault(current, [])
        elif line.strip() and current is not None:
            sections[current].append(line.strip())
    return sections


def _metadata(text: str, requires: list[str], internal: set[str]) -> str:
    """METADATA with `Requires-Dist` naming no distribution of ours, then `requires` added."""
    head, sep, body = text.partition("\n\n")
    lines = head.split("\n")
    kept = []
    present = set()
    for line in lines:
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.removeprefix("Requires-Dist:").strip())
            if canonicalize_name(req.name) in internal:
                continue
            present.add(str(req))
        kept.append(line)
    extra = [f"Requires-Dist: {r}" for r in requires if str(Requirement(r)) not in present]
    # The libraries' requirements follow the connector's own (or Requires-Python).
    anchors = [
        i for i, line in enumerate(kept) if line.startswith(("Requires-Dist:", "Requires-Python:"))
    ]
    at = anchors[-1] + 1 if anchors else len(kept)
    kept[at:at] = extra
    return "\n".join(kept) + sep + body


def merge_wheels(
    connector_wheel: Path,
    library_wheels: list[Path],
    requires: list[str],
    out_dir: Path,
    internal: set[str],
) -> Path:
    """One wheel: the connector's files and metadata, plus the libraries' modules and scripts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / connector_wheel.name
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(connector_wheel) as zf:
        info = _dist_info(zf.namelist())
        stamp = zf.infolist()[0].date_time
        for name in zf.namelist():
            if name != f"{info}/RECORD":
                files[name] = zf.read(name)
    points = _entry_points(files.get(f"{info}/entry_points.txt", b"").decode("utf-8"))
    for wheel in library_wheels:
        with zipfile.ZipFile(wheel) as zf:
            lib_info = _dist_info(zf.namelist())
            for name in zf.namelist():
                if name.startswith(f"{lib_info}/"):
                    continue
                if name.startswith(lib_info.replace(".dist-info", ".data/")):
                    # scripts/headers/data of a wheel's .data: only its own installer knows them
                    msg = f"{wheel.name} has a .data directory ({name}): not bundled"
                    raise ValueError(msg)
                if name in files:
                    msg = f"{name} is in both {connector_wheel.name} and {wheel.name}"
                    raise ValueError(msg)
                files[name] = zf.read(name)
            if f"{lib_info}/entry_points.txt" in zf.namelist():
                text = zf.read(f"{lib_info}/entry_points.txt").decode("utf-8")
                for section, entries in _entry_points(text).items():
                    points.setdefault(section, [])
                    points[section] += [e for e in entries if e not in points[section]]
    meta = files[f"{info}/METADATA"].decode("utf-8")
    files[f"{info}/METADATA"] = _metadata(meta, requires, internal).encode("utf-8")
    if points:
        text = "".join(
            f"[{section}]\n" + "".join(f"{e}\n" for e in entries) + "\n"
            for section, entries in points.items()
        )
        files[f"{info}/entry_points.txt"] = text.encode("utf-8")
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode("utf-8")
    # The dist-info directory last, as the wheel spec recommends.
    order = sorted(files, key=lambda n: (n.startswith(f"{info}/"), n))
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in order:
            zinfo = zipfile.ZipInfo(name, date_time=stamp)
            zinfo.external_attr = 0o644 << 16
            zinfo.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zinfo, files[name])
    tmp.replace(target)
    return target


def bundle_connector(
    connector_dir: str, out_dir: Path, build: WheelBuilder, root: Path = ROOT
) -> Path:
    """The connector's self-contained wheel in `out_dir`."""
    bundle = plan(connector_dir, root)
    internal = set(repository_distributions(root))
    libraries = [build(lib) for lib in bundle.libraries]
    return merge_wheels(build(connector_dir), libraries, bundle.requires, out_dir, internal)


# ------------------------------------------------------------------------------- definitions


def write_definition(
    connector: str, wheel: Path, out_dir: Path, pip_prefix: str, root: Path = ROOT
) -> Path:
    """`<out_dir>/<connector>.yml`: the committed definition, installing `wheel` instead."""
    source = root / "plugins" / CONNECTORS[connector] / f"{connector}.yml"
    definition = yaml.safe_load(source.read_text(encoding="utf-8"))
    definition["pip_url"] = f"{pip_prefix.rstrip('/')}/{wheel.name}"
    kind = CONNECTORS[connector].removesuffix("s")
    header = (
        f"# {connector}, installed from {wheel.name}: made by `make dist`.\n"
        f"# Copy this directory to {pip_prefix} in your Meltano project, then from its root:\n"
        f"#   meltano add --plugin-type {kind} {connector} \\\n"
        f"#     --from-ref {pip_prefix}/{connector}.yml\n"
    )
    path = out_dir / f"{connector}.yml"
    body = yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100)
    path.write_text(header + body, encoding="utf-8")
    return path


def make_dist(
    out_dir: Path,
    connectors: Iterable[str],
    pip_prefix: str = DEFAULT_PIP_PREFIX,
    build: WheelBuilder | None = None,
) -> dict[str, tuple[Path, Path]]:
    """Wheels and definitions of `connectors` in `out_dir`: name -> (wheel, definition)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made: dict[str, tuple[Path, Path]] = {}
    with tempfile.TemporaryDirectory(prefix="fcsync-dist-") as tmp:
        built: dict[str, Path] = {}

        def once(directory: str) -> Path:
            if directory not in built:
                built[directory] = build_wheel(directory, Path(tmp))
            return built[directory]

        for connector in connectors:
            for old in out_dir.glob(f"{connector.replace('-', '_')}-*.whl"):
                old.unlink()  # an earlier version's wheel would be a second candidate
            wheel = bundle_connector(connector, out_dir, build or once)
            made[connector] = (wheel, write_definition(connector, wheel, out_dir, pip_prefix))
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("connectors", nargs="*", default=list(CONNECTORS), metavar="NAME")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument(
        "--pip-prefix",
        default=DEFAULT_PIP_PREFIX,
        help="where the dist directory will be, relative to the Meltano project's root "
        f"(default {DEFAULT_PIP_PREFIX}) or absolute",
    )
    args = parser.parse_args(argv)
    unknown = set(args.connectors) - set(CONNECTORS)
    if unknown:
        parser.error(f"unknown connectors: {sorted(unknown)}")
    made = make_dist(args.out, args.connectors, args.pip_prefix)
    for connector, (wheel, definition) in made.items():
        bundled = ", ".join(plan(connector).libraries) or "nothing"
        print(f"{connector}: {wheel} (bundles {bundled}); definition {definition}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
