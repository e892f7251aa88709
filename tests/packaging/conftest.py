"""Shared by the packaging tests: the plugin_docs and dist scripts as modules, and built
distributions.

Building is done once per session, into a session temporary directory, with `python -m build`
(an isolated build: hatchling comes from the package index, not from this venv), so the
wheels are built from the sdists exactly as a user's pip would. `make dist`'s self-contained
connector wheels are merged from those same wheels (fixture `connector_dist`).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_script(name: str, module_name: str) -> ModuleType:
    path = ROOT / "scripts" / name
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


plugin_docs = _load_script("plugin_docs.py", "plugin_docs")
#: scripts/dist.py (`make dist`), under a name no installed package uses.
dist_script = _load_script("dist.py", "fcsync_dist_script")


class Dists:
    """Builds each package's sdist + wheel at most once per session."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        self._built: dict[str, tuple[Path, Path]] = {}

    def build(self, directory: str) -> tuple[Path, Path]:
        """(wheel, sdist) of the package in `directory` (relative to the repository root)."""
        if directory not in self._built:
            out = self.outdir / directory.replace("/", "_")
            proc = subprocess.run(
                [sys.executable, "-m", "build", "--outdir", str(out)],
                cwd=ROOT / directory,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert proc.returncode == 0, f"build of {directory} failed:\n{proc.stdout[-3000:]}"
            (wheel,) = out.glob("*.whl")
            (sdist,) = out.glob("*.tar.gz")
            self._built[directory] = (wheel, sdist)
        return self._built[directory]


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    return Dists(tmp_path_factory.mktemp("dists"))


@dataclass(frozen=True)
class ConnectorDist:
    """What `make dist` writes: the directory, and per connector its wheel and definition."""

    directory: Path
    wheels: dict[str, Path]
    definitions: dict[str, Path]


@pytest.fixture(scope="session")
def connector_dist(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> ConnectorDist:
    """`make dist` of the four connectors (default DIST_PREFIX), once per session."""
    out = tmp_path_factory.mktemp("connector-dist")
    made = dist_script.make_dist(
        out, dist_script.CONNECTORS, build=lambda directory: dists.build(directory)[0]
    )
    return ConnectorDist(
        out,
        {name: wheel for name, (wheel, _) in made.items()},
        {name: definition for name, (_, definition) in made.items()},
    )
