"""`make dist` (scripts/dist.py): each connector is one wheel that carries our libraries, names
no distribution of this repository (none is on an index: anyone could register the name), and
comes with its plugin definition installing that wheel.

The first tests work on small fake repositories and wheels (milliseconds); the e2e ones on the
real connectors, built once per session."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import ConnectorDist, dist_script, plugin_docs

CONNECTORS = list(dist_script.CONNECTORS)


# ------------------------------------------------------------------ fakes


def _pyproject(root: Path, directory: str, name: str, deps: list[str], **extras: list[str]) -> None:
    path = root / directory / "pyproject.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["[project]", f'name = "{name}"', 'version = "0.1.0"', f"dependencies = {deps!r}"]
    if extras:
        lines.append("[project.optional-dependencies]")
        lines += [f"{extra} = {reqs!r}" for extra, reqs in extras.items()]
    path.write_text("\n".join(lines).replace("'", '"') + "\n", encoding="utf-8")


@pytest.fixture
def fake_repo(tmp_path: Path) -> Path:
    _pyproject(tmp_path, "tap-x", "tap-x", ["singer-sdk~=0.54.9", "fcsync-a[pg]~=0.1.0"])
    _pyproject(tmp_path, "packages/a", "fcsync-a", ["requests>=2.32,<3", "fcsync-b~=0.1.0"],
               pg=["psycopg[binary]>=3.2,<4"], other=["never>=1"])  # fmt: skip
    _pyproject(tmp_path, "packages/b", "fcsync_B", ["requests>=2.32,<3", "tzdata>=2024.1"])
    _pyproject(tmp_path, "packages/sandbox", "fcsync-sandbox", ["flask>=3"])
    return tmp_path


def test_plan_follows_our_dependencies_transitively_with_their_extras(fake_repo: Path) -> None:
    bundle = dist_script.plan("tap-x", fake_repo)
    assert bundle.libraries == {"packages/a": {"pg"}, "packages/b": set()}
    assert bundle.requires == [
        "singer-sdk~=0.54.9",
        "requests<3,>=2.32",
        "tzdata>=2024.1",  # b's, met through a
        "psycopg[binary]<4,>=3.2",  # the extra the tap asked of a
    ]


def test_a_new_library_is_bundled_without_being_listed(fake_repo: Path) -> None:
    # What adding packages/target_runtime takes: the library, and the connector's dependency.
    _pyproject(fake_repo, "packages/target_runtime", "fcsync-target-runtime", ["jinja2>=3.1"])
    _pyproject(fake_repo, "tap-x", "tap-x", ["fcsync-target-runtime~=0.1.0", "fcsync-b~=0.1.0"])
    bundle = dist_script.plan("tap-x", fake_repo)
    assert set(bundle.libraries) == {"packages/target_runtime", "packages/b"}
    assert "jinja2>=3.1" in bundle.requires


def _wheel(path: Path, dist: str, files: dict[str, str], meta: list[str], points: str = "") -> Path:
    info = f"{dist}-0.1.0.dist-info"
    body = (
        "Metadata-Version: 2.4\nName: {0}\nVersion: 0.1.0\nRequires-Python: >=3.11\n{1}\n\nREADME"
    )
    content = {**files, f"{info}/METADATA": body.format(dist, "\n".join(meta))}
    content[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nTag: py3-none-any\n"
    if points:
        content[f"{info}/entry_points.txt"] = points
    content[f"{info}/RECORD"] = ""
    wheel = path / f"{dist}-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in content.items():
            zf.writestr(name, text)
    return wheel


def _check_record(wheel: Path) -> dict[str, bytes]:
    """The wheel's files, after checking each against its RECORD line."""
    with zipfile.ZipFile(wheel) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    (record,) = [name for name in files if name.endswith(".dist-info/RECORD")]
    rows = [line.split(",") for line in files[record].decode().splitlines()]
    assert {row[0] for row in rows} == set(files)
    for name, digest, size in rows:
        if name == record:
            assert (digest, size) == ("", "")
            continue
        expected = base64.urlsafe_b64encode(hashlib.sha256(files[name]).digest()).rstrip(b"=")
        assert digest == f"sha256={expected.decode()}", name
        assert int(size) == len(files[name]), name
    return files


def test_merged_wheel_has_the_libraries_code_and_scripts_and_names_none_of_them(
    tmp_path: Path,
) -> None:
    tap = _wheel(
        tmp_path,
        "tap_x",
        {"tap_x/__init__.py": "import a\n"},
        ["Requires-Dist: singer-sdk~=0.54.9", "Requires-Dist: fcsync-a~=0.1.0"],
        "[console_scripts]\ntap-x = tap_x:main\n",
    )
    lib = _wheel(
        tmp_path,
        "fcsync_a",
        {"a/__init__.py": "", "a/py.typed": ""},
        ["Requires-Dist: requests<3,>=2.32"],
        "[console_scripts]\na-report = a.cli:main\n",
    )
    out = tmp_path / "out"
    merged = dist_script.merge_wheels(
        tap, [lib], ["singer-sdk~=0.54.9", "requests<3,>=2.32"], out, {"fcsync-a"}
    )
    assert merged == out / tap.name
    files = _check_record(merged)
    assert {"tap_x/__init__.py", "a/__init__.py", "a/py.typed"} <= set(files)
    assert not any(name.startswith("fcsync_a-") for name in files)  # one distribution
    meta = files["tap_x-0.1.0.dist-info/METADATA"].decode()
    assert meta.endswith("\n\nREADME")
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert requires == ["Requires-Dist: singer-sdk~=0.54.9", "Requires-Dist: requests<3,>=2.32"]
    points = files["tap_x-0.1.0.dist-info/entry_points.txt"].decode()
    assert points == "[console_scripts]\ntap-x = tap_x:main\na-report = a.cli:main\n\n"


def test_a_file_in_two_wheels_is_an_error(tmp_path: Path) -> None:
    tap = _wheel(tmp_path, "tap_x", {"shared/x.py": ""}, [])
    lib = _wheel(tmp_path, "fcsync_a", {"shared/x.py": ""}, [])
    with pytest.raises(ValueError, match=r"shared/x\.py"):
        dist_script.merge_wheels(tap, [lib], [], tmp_path / "out", set())


def test_a_library_with_a_data_directory_is_refused(tmp_path: Path) -> None:
    tap = _wheel(tmp_path, "tap_x", {"tap_x/__init__.py": ""}, [])
    lib = _wheel(tmp_path, "fcsync_a", {"fcsync_a-0.1.0.data/scripts/run": ""}, [])
    with pytest.raises(ValueError, match=r"\.data directory"):
        dist_script.merge_wheels(tap, [lib], [], tmp_path / "out", set())


# ------------------------------------------------------------------ the real connectors


@pytest.mark.e2e
@pytest.mark.parametrize("connector", CONNECTORS)
def test_each_connector_is_one_wheel_that_names_no_distribution_of_ours(
    connector_dist: ConnectorDist, connector: str
) -> None:
    wheel = connector_dist.wheels[connector]
    files = _check_record(wheel)
    ours = set(dist_script.repository_distributions())
    meta = next(body for name, body in files.items() if name.endswith(".dist-info/METADATA"))
    requires = [
        Requirement(line.removeprefix("Requires-Dist:").strip())
        for line in meta.decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    assert requires
    assert not [str(r) for r in requires if canonicalize_name(r.name) in ours]
    assert all(str(r.specifier) for r in requires)  # every one with a range
    # The code of every library the connector's pyproject names (and theirs) is in the wheel.
    for library in dist_script.plan(connector).libraries:
        package = library.removeprefix("packages/")
        assert f"{package}/__init__.py" in files, package
    assert f"{connector.replace('-', '_')}/__init__.py" in files
    assert not any(name.startswith("sandbox/") for name in files)
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("connector", CONNECTORS)
def test_the_definition_next_to_it_installs_that_wheel(
    connector_dist: ConnectorDist, connector: str
) -> None:
    written = yaml.safe_load(connector_dist.definitions[connector].read_text(encoding="utf-8"))
    wheel = connector_dist.wheels[connector]
    assert written["pip_url"] == f"{dist_script.DEFAULT_PIP_PREFIX}/{wheel.name}"
    committed = next(c for c in plugin_docs.CONNECTORS if c.name == connector).definition_path
    expected = yaml.safe_load(committed.read_text(encoding="utf-8"))
    assert {k: v for k, v in written.items() if k != "pip_url"} == {
        k: v for k, v in expected.items() if k != "pip_url"
    }
    assert connector_dist.definitions[connector].parent == wheel.parent == connector_dist.directory


@pytest.mark.parametrize("connector", CONNECTORS)
def test_the_readme_shows_the_dist_route_with_the_current_wheel(connector: str) -> None:
    spec = next(c for c in plugin_docs.CONNECTORS if c.name == connector)
    readme = spec.readme_path.read_text(encoding="utf-8")
    section = readme.split("## Use it in your own Meltano project", 1)[1].split("\n## ", 1)[0]
    prefix = dist_script.DEFAULT_PIP_PREFIX
    wheel = f"{connector.replace('-', '_')}-{plugin_docs.release_version()}-py3-none-any.whl"
    assert "make dist" in section
    assert f"cp -r dist /path/to/my-project/{prefix.removeprefix('./')}" in section
    assert (
        f"--plugin-type {spec.singular} {connector} --from-ref {prefix}/{connector}.yml" in section
    )
    assert f"pip_url: {prefix}/{wheel}" in section
    assert "--no-install" not in section  # a local definition installs its own pip_url
