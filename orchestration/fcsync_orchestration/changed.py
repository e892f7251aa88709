"""`fcsync-changed <job>`: should cron start this Meltano job now? Exit 0 yes, 1 no.

For cron users of one Meltano project (no Dagster): ``fcsync-changed factusol-to-clientify &&
meltano run factusol-to-clientify``. It asks the job's source, with the tap's own change probe
(``tap_factusol.probe`` / ``tap_clientify.probe``), whether anything changed since the job's
bookmark, without starting Meltano (a `meltano` process costs about a CPU-second, and the
job's run about five):

- the tap's config is resolved as `meltano run` would: the setting defaults and the plugin's
  `config:` in meltano.yml (its parent's first, for `inherit_from`), the environment's
  `config:` for it, then `<PLUGIN>_<SETTING>` variables (namespace, then name); `${VAR}` is
  expanded from the process environment, then `.env`, then the environment's and the
  project's `env:`;
- the job's state is read from Meltano's system database (MELTANO_DATABASE_URI, else
  `.meltano/meltano.db`), state id `<env>:<tap>-to-<target>[:<suffix>]`, with sqlite3 for a
  SQLite file (SQLAlchemy only for another database);
- the probe runs in this process when the tap is importable here, else with the Python of the
  tap's own Meltano venv (`.meltano/extractors/<tap>/venv`), the config passed through a pipe.

Exit 0 (run it) when something changed, when the job has no state yet, and on any doubt (no
probe for that tap, a probe error, an unreadable meltano.yml); 1 only when the probe says
nothing changed. One line on stdout says which; never a setting's value. Imports are lazy: an
idle call costs the interpreter, YAML, sqlite3 and the probe's HTTP client.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["PROBES", "main", "resolve_job", "tap_config"]

#: The change probe of a tap, by its namespace (meltano.yml `namespace`).
PROBES = {
    "tap_factusol": "tap_factusol.probe:has_changes",
    "tap_clientify": "tap_clientify.probe:has_changes",
}
RUN, IDLE = 0, 1
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


class JobError(Exception):
    """meltano.yml does not define what the job needs (a job, its tap, its target)."""


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: a tenth of the CPU
    with path.open(encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader
    return data if isinstance(data, dict) else {}


def find_project(start: Path) -> Path:
    """MELTANO_PROJECT_ROOT, else the nearest directory holding meltano.yml (as Meltano)."""
    root = os.environ.get("MELTANO_PROJECT_ROOT")
    if root:
        return Path(root)
    for directory in (start, *start.parents):
        if (directory / "meltano.yml").is_file():
            return directory
    raise JobError(f"no meltano.yml in {start} or above (or set MELTANO_PROJECT_ROOT)")


def read_dotenv(path: Path) -> dict[str, str]:
    """`NAME=value` lines of a `.env` file (quotes stripped, `export ` allowed, # comments)."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[name.strip()] = value
    return out


def _plugin(project: Mapping[str, Any], kind: str, name: str) -> dict[str, Any]:
    for plugin in (project.get("plugins") or {}).get(kind) or []:
        if isinstance(plugin, dict) and plugin.get("name") == name:
            return plugin
    raise JobError(f"meltano.yml defines no {kind[:-1]} {name!r}")


def _lineage(project: Mapping[str, Any], kind: str, name: str) -> list[dict[str, Any]]:
    """The plugin and the ones it inherits from, parent first."""
    chain: list[dict[str, Any]] = []
    while name and len(chain) < 10:
        plugin = _plugin(project, kind, name)
        chain.insert(0, plugin)
        name = str(plugin.get("inherit_from") or "")
    return chain


def resolve_job(project: Mapping[str, Any], job: str) -> tuple[str, str]:
    """(tap, target) of a meltano.yml job of one `tap target` task."""
    for entry in project.get("jobs") or []:
        if isinstance(entry, dict) and entry.get("name") == job:
            tasks = entry.get("tasks") or []
            task = tasks[0] if isinstance(tasks, list) and len(tasks) == 1 else None
            words = str(task).split() if isinstance(task, str) else []
            if len(words) != 2:
                raise JobError(f"job {job!r}: expected one task `<tap> <target>`")
            return words[0], words[1]
    raise JobError(f"meltano.yml defines no job {job!r}")


def _environment(project: Mapping[str, Any], name: str) -> dict[str, Any]:
    for env in project.get("environments") or []:
        if isinstance(env, dict) and env.get("name") == name:
            return env
    raise JobError(f"meltano.yml defines no environment {name!r}")


def _env_prefix(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_"


def _expand(value: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _VAR.sub(lambda m: variables.get(m.group(1) or m.group(2), ""), value)
    if isinstance(value, list):
        return [_expand(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, variables) for k, v in value.items()}
    return value


def _coerce(text: str, kind: str | None) -> Any:
    """A setting given as an environment variable, typed by its meltano.yml `kind`."""
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            return text
    if kind == "boolean":
        return text.strip().lower() in ("1", "true", "t", "yes", "y", "on")
    if kind in ("array", "object"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def tap_config(
    project: Mapping[str, Any],
    tap: str,
    environment: str,
    variables: Mapping[str, str],
) -> tuple[dict[str, Any], str]:
    """The tap's config as `meltano run` would give it, and its namespace.

    ``variables``: the merged environment (process, `.env`, the environment's and the
    project's `env:`), highest first already applied.
    """
    chain = _lineage(project, "extractors", tap)
    env_plugins = ((_environment(project, environment).get("config") or {}).get("plugins")) or {}
    env_taps = {
        p.get("name"): p for p in env_plugins.get("extractors") or [] if isinstance(p, dict)
    }
    namespace = next(
        (str(p["namespace"]) for p in reversed(chain) if p.get("namespace")),
        tap.replace("-", "_"),
    )
    kinds: dict[str, str | None] = {}
    config: dict[str, Any] = {}
    for plugin in chain:
        for setting in plugin.get("settings") or []:
            if isinstance(setting, dict) and setting.get("name"):
                kinds[setting["name"]] = setting.get("kind")
                if "value" in setting:
                    config[setting["name"]] = setting["value"]
    for plugin in chain:
        config.update(plugin.get("config") or {})
    for plugin in chain:
        config.update((env_taps.get(plugin.get("name")) or {}).get("config") or {})
    for prefix in dict.fromkeys((_env_prefix(namespace), _env_prefix(tap))):
        for name, kind in kinds.items():
            value = variables.get(prefix + re.sub(r"[^A-Za-z0-9]", "_", name).upper())
            if value is not None:
                config[name] = _coerce(value, kind)
    config = _expand(config, variables)
    return {k: v for k, v in config.items() if v is not None and v != ""}, namespace


def _variables(project_dir: Path, project: Mapping[str, Any], environment: str) -> dict[str, str]:
    """Process environment over `.env` over the environment's `env:` over the project's."""
    merged: dict[str, str] = {}
    for layer in (
        project.get("env") or {},
        _environment(project, environment).get("env") or {},
        read_dotenv(project_dir / ".env"),
        os.environ,
    ):
        merged.update({str(k): str(v) for k, v in layer.items() if v is not None})
    return merged


def read_state(uri: str, state_id: str) -> dict[str, Any] | None:
    """The job's Singer state from Meltano's system database (None: no state yet)."""
    from .probe import StateReader, read_sqlite_state

    if uri.startswith("sqlite:"):
        return read_sqlite_state(uri, state_id)
    reader = StateReader()
    try:
        return reader.singer_state(uri, state_id)
    finally:
        reader.close()


def run_probe(
    probe_path: str, config: dict[str, Any], state: dict[str, Any], venv_python: Path
) -> bool:
    """The probe's answer, in this process when its tap is importable here, else with the
    Python of the tap's Meltano venv (exit 0 changed, 1 not; anything else raises)."""
    from importlib.util import find_spec

    module, _, function = probe_path.partition(":")
    if find_spec(module.split(".", 1)[0]) is not None:
        from .probe import load_probe

        return bool(load_probe(probe_path)(config, state))
    if not venv_python.is_file():
        raise RuntimeError(f"{module} is neither importable here nor installed at {venv_python}")
    import subprocess

    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "w", encoding="utf-8") as pipe:
        json.dump({"config": config, "state": state}, pipe)  # < 64 KiB: the pipe holds it
    # An uncaught exception would exit 1, "no change": errors exit 2, named.
    code = (
        "import json, os, sys, importlib\n"
        "try:\n"
        f"    args = json.load(os.fdopen({read_fd}, encoding='utf-8'))\n"
        f"    probe = getattr(importlib.import_module({module!r}), {function!r})\n"
        "    changed = probe(args['config'], args['state'])\n"
        "except Exception as exc:\n"
        "    print(f'{type(exc).__name__}: {exc}', file=sys.stderr)\n"
        "    sys.exit(2)\n"
        "sys.exit(0 if changed else 1)\n"
    )
    try:
        done = subprocess.run(
            [str(venv_python), "-c", code],
            pass_fds=(read_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        os.close(read_fd)
    if done.returncode in (0, 1):
        return done.returncode == 0
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise RuntimeError(f"the probe exited {done.returncode}: {last[:200]}")


def decide(job: str, environment: str | None, suffix: str | None, cwd: Path) -> tuple[int, str]:
    """(exit status, the line to print) for `fcsync-changed job`."""
    project_dir = find_project(cwd)
    project = _load_yaml(project_dir / "meltano.yml")
    env_name = (
        environment
        or os.environ.get("MELTANO_ENVIRONMENT")
        or str(project.get("default_environment") or "dev")
    )
    tap, target = resolve_job(project, job)
    variables = _variables(project_dir, project, env_name)
    config, namespace = tap_config(project, tap, env_name, variables)
    state_id = f"{env_name}:{tap}-to-{target}" + (f":{suffix}" if suffix else "")
    probe_path = PROBES.get(namespace)
    if probe_path is None:
        return RUN, f"{job}: no change probe for {tap}; run it"
    backend = variables.get("MELTANO_STATE_BACKEND_URI") or str(
        (project.get("state_backend") or {}).get("uri") or "systemdb"
    )
    if backend != "systemdb":
        scheme = backend.split(":", 1)[0]  # never the rest: it may hold a credential
        return RUN, f"{job}: state kept outside Meltano's database ({scheme}); run it"
    uri = variables.get("MELTANO_DATABASE_URI") or (
        f"sqlite:///{project_dir / '.meltano' / 'meltano.db'}"
    )
    state = read_state(uri, state_id)
    if state is None:
        return RUN, f"{job}: no state yet for {state_id}; run it"
    venv = project_dir / ".meltano" / "extractors" / tap / "venv" / "bin" / "python"
    if run_probe(probe_path, config, state, venv):
        return RUN, f"{job}: changes since the bookmark of {state_id}; run it"
    return IDLE, f"{job}: no change since the bookmark of {state_id}; nothing to run"


def main(argv: list[str] | None = None) -> int:
    """Console script `fcsync-changed <job> [--environment dev|prod] [--state-id-suffix C]`."""
    parser = argparse.ArgumentParser(
        prog="fcsync-changed",
        description="Exit 0 when the Meltano job should run (its source changed since its "
        "bookmark, it has no state yet, or in doubt), 1 when nothing changed.",
    )
    parser.add_argument("job", help="a job of meltano.yml, e.g. factusol-to-clientify")
    parser.add_argument("--environment", help="Meltano environment (default: as meltano)")
    parser.add_argument("--state-id-suffix", help="as given to `meltano run`")
    args = parser.parse_args(argv)
    try:
        status, line = decide(args.job, args.environment, args.state_id_suffix, Path.cwd())
    except Exception as exc:  # any doubt: run the job, which reports the problem properly
        status, line = RUN, f"{args.job}: cannot tell ({type(exc).__name__}: {exc}); run it"
    print(line, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
