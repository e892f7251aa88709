"""Every shipped package builds an sdist and a wheel that pass `twine check --strict`, with the
metadata a user (and PyPI) needs: version, MIT license file, classifiers, project URLs (once
the project has a public address), a Markdown README, dependency ranges, and never the sandbox."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from .conftest import ROOT, Dists, plugin_docs

pytestmark = pytest.mark.e2e

CONNECTORS = {c.directory for c in plugin_docs.CONNECTORS}


def _metadata(wheel: Path) -> tuple[Message, dict[str, bytes]]:
    with zipfile.ZipFile(wheel) as zf:
        files = {name: zf.read(name) for name in zf.namelist() if ".dist-info/" in name}
    (meta,) = [body for name, body in files.items() if name.endswith("/METADATA")]
    return Parser().parsestr(meta.decode("utf-8")), files


@pytest.mark.parametrize("directory", plugin_docs.SHIPPED)
def test_distribution_builds_and_carries_its_metadata(dists: Dists, directory: str) -> None:
    wheel, sdist = dists.build(directory)
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    meta, files = _metadata(wheel)
    version = plugin_docs.release_version()
    assert meta["Version"] == version
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    license_text = (ROOT / "LICENSE").read_bytes()
    assert [body for name, body in files.items() if name.endswith("licenses/LICENSE")] == [
        license_text
    ]
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip(), "the README is the long description"

    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert not any(c.startswith("License ::") for c in classifiers)  # License-Expression says it

    # Project URLs only once the project has a public address: none rather than dead links.
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    repo = plugin_docs.repository_url()
    wanted = {"Homepage", "Documentation", "Repository", "Issues"} if repo else set()
    if repo and directory in CONNECTORS:
        wanted.add("Changelog")
    assert set(urls) == wanted
    assert all(u.startswith(repo or "") for u in urls.values())

    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        assert req.name != plugin_docs.SANDBOX
        assert str(req.specifier), f"{req.name} has no range"
        assert not any(s.operator == "==" for s in req.specifier), f"{req.name} is pinned"
        if req.name in plugin_docs.LIBRARIES:
            assert req.specifier.contains(version)

    with tarfile.open(sdist) as tf:
        names = {Path(n).relative_to(Path(n).parts[0]).as_posix() for n in tf.getnames()}
        license_member = next(m for m in tf.getmembers() if m.name.endswith("/LICENSE"))
        member = tf.extractfile(license_member)
        assert member is not None
        assert member.read() == license_text
    assert {"LICENSE", "README.md", "pyproject.toml", "PKG-INFO"} <= names
    if directory in CONNECTORS:
        assert "CHANGELOG.md" in names
