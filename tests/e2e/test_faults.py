"""Faults end to end through `meltano run`: flaky APIs, an API down past the retry budget,
wrong credentials, and secrets at `--log-level=debug`.

Figures (faults injected by kind, records, lost, duplicated) go to output/reliability/*.json;
docs/reliability.md quotes them.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sandbox.launcher import SandboxProcess

from .conftest import ROOT, Project, link_of

FIGURES = ROOT / "output" / "reliability"
FAULT_SEED = 20240611
# ~20 % of API calls fail on each sandbox, spread over every kind the sandboxes inject (the
# sync makes few calls for this data, ~80 a run pair: 11 % drew too few faults to mean much).
FLAKY = {
    "error_rate": 0.07,
    "throttle_rate": 0.05,
    "retry_after_seconds": 1,
    "drop_rate": 0.05,
    "slow_rate": 0.02,
    "slow_seconds": 3,
    "seed": FAULT_SEED,
}
FLAKY_FACTUSOL_SWITCHES = {"ko_rate": 0.03, "token_ttl_seconds": 3}
SHORT_TIMEOUTS = {
    f"{plugin}_TIMEOUT": "2"
    for plugin in ("TAP_FACTUSOL", "TAP_CLIENTIFY", "TARGET_CLIENTIFY", "TARGET_FACTUSOL")
}
STATE_ID = "dev:tap-factusol-to-target-clientify"


def write_figures(name: str, figures: dict[str, Any]) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"\nfigures: {path}\n{json.dumps(figures, indent=2, sort_keys=True)}")


def faults_by_kind(*procs: SandboxProcess) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for proc in procs:
        log = proc.requests_log()
        kinds = Counter(str(r["fault"]) for r in log if r.get("fault"))
        out[proc.api] = {**dict(sorted(kinds.items())), "calls": len(log)}
        if proc.api == "factusol":
            out[proc.api]["logins"] = sum("autenticar" in r["path"].lower() for r in log)
    return out


def plugin_errors(output: str) -> list[str]:
    """[error] lines logged by a plugin (not by meltano's own wrap-up lines)."""
    return [
        line.split("]", 1)[-1].strip()[:300]
        for line in output.splitlines()
        if "[error" in line and " meltano " not in line
    ]


def error_lines(output: str) -> list[str]:
    keep = ("error", "rejected", "failed", "stopped", "cannot")
    return [line for line in output.splitlines() if any(k in line.lower() for k in keep)]


# ------------------------------------------------------------------------------ flaky APIs


def test_full_sync_each_way_under_faults_loses_and_duplicates_nothing(project: Project) -> None:
    fs, cl = project.factusol, project.clientify
    project.extra_env.update(SHORT_TIMEOUTS)
    fs.configure(faults=FLAKY, switches=FLAKY_FACTUSOL_SWITCHES)
    cl.configure(faults=FLAKY)

    first = project.run("factusol-to-clientify-full", check=False)
    faults_1 = faults_by_kind(fs, cl)
    records_1 = len(project.clients())
    fs.clear_requests()
    cl.clear_requests()
    second = project.run("clientify-to-factusol-full", check=False)
    faults_2 = faults_by_kind(fs, cl)
    fs.configure(faults={k: 0 for k in FLAKY if k != "seed"}, switches={"ko_rate": 0})
    cl.configure(faults={k: 0 for k in FLAKY if k != "seed"})

    clients = project.clients()
    contacts = project.contacts()
    by_link: dict[int, list[int]] = {}
    for cid, contact in contacts.items():
        if (link := link_of(contact)) is not None:
            by_link.setdefault(int(link), []).append(cid)
    rejected_codes = {
        r["record"].get("code")
        for r in project.lines("rejects", "target-clientify")
        if "record" in r
    }
    rejected_contacts = {
        r["record"].get("id") for r in project.lines("rejects", "target-factusol") if "record" in r
    }
    # FactuSOL -> Clientify: each client exactly one contact carrying its code
    lost_1 = sorted(c for c in clients if c not in by_link and c not in rejected_codes)
    dup_1 = sorted(c for c, ids in by_link.items() if len(ids) > 1)
    # Clientify -> FactuSOL: each contact linked to exactly one existing client
    lost_2 = sorted(
        cid
        for cid, contact in contacts.items()
        if cid not in rejected_contacts
        and (link_of(contact) is None or int(link_of(contact) or 0) not in clients)
    )
    from target_factusol.markers import marker_ids

    marker_count = Counter(cid for row in clients.values() for cid in marker_ids(row.get("OBSCLI")))
    dup_2 = sorted(cid for cid, n in marker_count.items() if n > 1) + dup_1
    names = Counter(
        (row.get("NOFCLI"), row.get("NIFCLI"), row.get("EMACLI")) for row in clients.values()
    )
    same_rows = sorted(str(k) for k, n in names.items() if n > 1 and any(k))

    figures = {
        "fault_seed": FAULT_SEED,
        "faults_config": {"faults": FLAKY, "factusol_switches": FLAKY_FACTUSOL_SWITCHES},
        "timeouts_seconds": 2,
        "factusol_to_clientify": {
            "exit_code": first.returncode,
            "records": records_1,
            "faults_injected": faults_1,
            "lost": lost_1,
            "duplicated": dup_1,
            "rejected": len(rejected_codes),
            "errors": error_lines(first.output)[-5:],
        },
        "clientify_to_factusol": {
            "exit_code": second.returncode,
            "records": len(contacts),
            "faults_injected": faults_2,
            "lost": lost_2,
            "duplicated": dup_2,
            "identical_client_rows": same_rows,
            "rejected": len(rejected_contacts),
            "errors": error_lines(second.output)[-5:],
        },
    }
    write_figures("faults-e2e", figures)
    injected = sum(
        n
        for side in (faults_1, faults_2)
        for api in side.values()
        for k, n in api.items()
        if k not in ("calls", "logins")
    )
    assert injected >= 5, figures  # ~20 % of ~80 calls; the exact draw varies by thread timing
    assert first.returncode == 0, first.output[-3000:]
    assert second.returncode == 0, second.output[-3000:]
    assert (lost_1, dup_1, lost_2, dup_2, same_rows) == ([], [], [], [], [])


# ------------------------------------------------------------------------------ API down


def test_api_down_past_retry_budget_stops_clearly_keeps_state_then_resumes(
    project: Project,
) -> None:
    fs, cl = project.factusol, project.clientify
    project.extra_env.update({"TARGET_CLIENTIFY_MAX_RETRIES": "1", "TAP_FACTUSOL_MAX_RETRIES": "1"})
    project.run("factusol-to-clientify")  # first incremental run: a bookmark, nothing changed
    state_before = project.state(STATE_ID)
    fs.admin("PATCH", "clients/3", {"NOFCLI": "Cambio Durante Caída, S.L."})

    cl.configure(faults={"error_rate": 1.0})
    down = project.run("factusol-to-clientify", check=False)
    cl.configure(faults={"error_rate": 0.0})
    state_down = project.state(STATE_ID)
    fs.configure(faults={"error_rate": 1.0})
    fs.clear_requests()
    tap_down = project.run("factusol-to-clientify", check=False)
    fs.configure(faults={"error_rate": 0.0})
    state_tap_down = project.state(STATE_ID)

    resumed = project.run("factusol-to-clientify", check=False)
    contact = [c for c in project.contacts().values() if link_of(c) == "3"]
    figures = {
        "target_down": {"exit_code": down.returncode, "errors": plugin_errors(down.output)},
        "tap_down": {"exit_code": tap_down.returncode, "errors": plugin_errors(tap_down.output)},
        "state_unchanged": state_down == state_before and state_tap_down == state_before,
        "resumed_exit_code": resumed.returncode,
    }
    write_figures("api-down-e2e", figures)
    assert down.returncode != 0
    assert tap_down.returncode != 0
    for run, api in ((down, "clientify"), (tap_down, "factusol")):
        # one [error] line from the plugin naming the API and the give-up
        lines = [
            line
            for line in run.output.splitlines()
            if "[error" in line
            and api in line.lower()
            and any(w in line.lower() for w in ("gave up", "failed after", "not usable", "stopped"))
        ]
        assert lines, run.output[-3000:]
    assert state_down == state_before
    assert state_tap_down == state_before
    assert resumed.returncode == 0, (
        "\n".join(plugin_errors(resumed.output)) + resumed.output[-3000:]
    )
    assert len(contact) == 1
    assert contact[0]["first_name"] == "Cambio Durante Caída, S.L."
    assert project.state(STATE_ID) != state_before


# ------------------------------------------------------------------------------ credentials

CREDENTIALS = [
    pytest.param("factusol-to-clientify", "TAP_FACTUSOL_PASSWORD", "factusol"),
    pytest.param("factusol-to-clientify", "TARGET_CLIENTIFY_API_KEY", "clientify"),
    pytest.param("clientify-to-factusol", "TAP_CLIENTIFY_API_KEY", "clientify"),
    pytest.param("clientify-to-factusol", "TARGET_FACTUSOL_PASSWORD", "factusol"),
    pytest.param("clientify-to-factusol", "TARGET_FACTUSOL_CLIENTIFY_API_KEY", "clientify"),
]
CREDENTIAL_WORDS = ("password", "api_key", "api key", "credential", "login")


def one_source_change(project: Project, job: str) -> None:
    """A record for the target to read: a run that receives none makes no API call at all
    (issue 24), so a target's credentials are first used, and checked, at its first record."""
    if job.startswith("factusol"):
        project.factusol.admin("PATCH", "clients/3", {"TELCLI": "934 567 890"})
    else:
        (contact, *_) = project.clientify.admin("GET", "contacts")["contacts"]
        project.clientify.admin("PATCH", f"contacts/{contact['id']}", {"title": "Gerente"})


@pytest.mark.parametrize(("job", "variable", "api"), CREDENTIALS)
def test_wrong_credential_fails_at_start_naming_it(
    project: Project, job: str, variable: str, api: str
) -> None:
    project.extra_env = {variable: "wrong-" + variable.lower()}
    one_source_change(project, job)
    run = project.run(job, check=False)
    writes = project.writes(project.factusol) + project.writes(project.clientify)
    named = [
        line
        for line in run.output.splitlines()
        if "[error" in line
        and api in line.lower()
        and any(w in line.lower() for w in CREDENTIAL_WORDS)
    ]
    write_figures(
        f"credentials-e2e-{variable}",
        {
            "job": job,
            "exit_code": run.returncode,
            "error": named[0][-300:] if named else None,
            "writes": [f"{w['method']} {w['path']}" for w in writes],
        },
    )
    assert run.returncode != 0
    assert named, run.output[-3000:]
    assert writes == []  # nothing moved, not even setup writes


# ------------------------------------------------------------------------------ secrets

FS_SECRET = "Fs-E2E-Pw-3b9d71c0-SECRET"
CL_SECRET = "cl-e2e-key-6a2f94be17d0-SECRET"


def _restart(proc: SandboxProcess, *args: str) -> None:
    proc.stop()
    proc.extra_args = list(args)
    proc.start()


def test_debug_meltano_run_leaks_no_secret(project: Project, tmp_path: Path) -> None:
    _restart(project.factusol, "--password", FS_SECRET)
    _restart(project.clientify, "--api-key", CL_SECRET)
    project.extra_env = {
        "TAP_FACTUSOL_PASSWORD": FS_SECRET,
        "TARGET_CLIENTIFY_API_KEY": CL_SECRET,
        "TARGET_CLIENTIFY_FACTUSOL_PASSWORD": FS_SECRET,  # its read-only census
    }
    ok = project.meltano("--log-level=debug", "run", "factusol-to-clientify-full", check=False)
    project.clientify.configure(faults={"error_rate": 1.0})
    project.extra_env["TARGET_CLIENTIFY_MAX_RETRIES"] = "0"
    one_source_change(project, "factusol-to-clientify")  # an idle run would make no call
    failing = project.meltano("--log-level=debug", "run", "factusol-to-clientify", check=False)
    project.clientify.configure(faults={"error_rate": 0.0})
    texts = {"ok run": ok.output, "failing run": failing.output}
    for path in project.workdir.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".log", ".db", ".txt"):
            texts[str(path.relative_to(project.workdir))] = path.read_bytes().decode(
                "utf-8", errors="replace"
            )
    forms = {
        form
        for secret in (FS_SECRET, CL_SECRET)
        for form in (
            secret,
            base64.b64encode(secret.encode()).decode(),
            base64.b64encode(secret.encode()).decode().rstrip("="),
        )
    }
    leaks = sorted(
        f"{where}: {form[:10]}…" for where, text in texts.items() for form in forms if form in text
    )
    write_figures(
        "secrets-e2e",
        {
            "runs": {"ok": ok.returncode, "failing": failing.returncode},
            "debug_lines": len(ok.output.splitlines()) + len(failing.output.splitlines()),
            "files_searched": len(texts) - 2,
            "leaks": leaks,
        },
    )
    assert ok.returncode == 0, ok.output[-3000:]
    assert failing.returncode != 0
    assert "debug" in ok.output.lower()
    assert leaks == []
