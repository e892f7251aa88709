"""Shared by the packaging tests: the plugin_docs script as a module, and built distributions.

Building is done once per session, into a session temporary directory, with `python -m build`
(an isolated build: hatchling comes from the package index, not from this venv), so the
wheels are built from the sdists exactly as a user's pip would.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_plugin_docs() -> ModuleType:
    path = ROOT / "scripts" / "plugin_docs.py"
    spec = importlib.util.spec_from_file_location("plugin_docs", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["plugin_docs"] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


plugin_docs = _load_plugin_docs()


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
