"""`make demo`: the whole product against the local sandboxes, no accounts needed.

Seeds both emulators with Spanish data, runs both full syncs, edits a few records on each side
as users would, runs both modified syncs and prints what happened. Safe to run again: it starts
from fresh sandboxes and fresh Meltano state every time, and stops the servers it started.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from sandbox.launcher import SandboxProcess, meltano_env

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".sandbox" / "demo"
OUTPUT = ROOT / "output" / "demo"
MELTANO = str(Path(sys.executable).with_name("meltano"))
COUNTERS = ("created", "linked", "updated", "unchanged", "rejected", "conflicts")


def run_job(job: str) -> dict[str, Any]:
    target = "target-clientify" if job.startswith("factusol") else "target-factusol"
    print(f"\n$ meltano run {job}", flush=True)
    log = OUTPUT / "logs" / f"{job}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.run(
            [MELTANO, "run", job],
            cwd=ROOT,
            env=meltano_env(WORK, output=OUTPUT),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    if proc.returncode != 0:
        print(log.read_text(encoding="utf-8")[-4000:])
        raise SystemExit(f"meltano run {job} failed (exit {proc.returncode}); full log: {log}")
    report: dict[str, Any] = json.loads(
        (OUTPUT / "reports" / f"{target}.json").read_text(encoding="utf-8")
    )
    counts = report.get("counts", report)
    print("  " + ", ".join(f"{name} {counts.get(name, 0)}" for name in COUNTERS))
    return {"job": job, **{name: counts.get(name, 0) for name in COUNTERS}}


def edit_like_users(factusol: SandboxProcess, clientify: SandboxProcess) -> None:
    print("\nEditing a few records as users would:")
    factusol.admin("PATCH", "clients/3", {"TELCLI": "+34 611 22 33 44"})
    print("  FactuSOL: client 3 gets a new phone")
    factusol.admin("PATCH", "clients/5", {"EMACLI": "Nuevo.Correo@Ejemplo.ES"})
    print("  FactuSOL: client 5 gets a new e-mail")
    new = factusol.admin(
        "POST",
        "clients",
        {"NOFCLI": "Talleres Ibáñez Ruiz, S.L.", "NIFCLI": "B86503811", "TELCLI": "954 11 22 33"},
    )
    print(f"  FactuSOL: new client {new.get('CODCLI', '')} Talleres Ibáñez Ruiz, S.L.")
    contacts = clientify.admin("GET", "contacts")["contacts"]
    if contacts:
        first = contacts[0]
        clientify.admin("PATCH", f"contacts/{first['id']}", {"last_name": "Santamaría"})
        print(f"  Clientify: contact {first['id']} gets a new last name")
    created = clientify.admin(
        "POST",
        "contacts",
        {"first_name": "Lucía", "last_name": "Ortega Marín", "email": "lucia.ortega@example.es"},
    )
    print(f"  Clientify: new contact {created.get('id', '')} Lucía Ortega Marín")


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    shutil.rmtree(OUTPUT, ignore_errors=True)
    factusol = SandboxProcess("factusol", WORK / "factusol", port=8765)
    clientify = SandboxProcess("clientify", WORK / "clientify", port=8766)
    factusol.seed("--clients", "60", "--seed", "42")
    clientify.seed("--contacts", "15", "--seed", "42")
    rows: list[dict[str, Any]] = []
    with factusol, clientify:
        print(f"FactuSOL sandbox on {factusol.url}, Clientify sandbox on {clientify.api_url}")
        rows.append(run_job("factusol-to-clientify-full"))
        rows.append(run_job("clientify-to-factusol-full"))
        edit_like_users(factusol, clientify)
        rows.append(run_job("factusol-to-clientify"))
        rows.append(run_job("clientify-to-factusol"))
        clients = len(factusol.admin("GET", "clients")["clients"])
        contacts = len(clientify.admin("GET", "contacts")["contacts"])
    print("\nSummary")
    header = f"{'job':32}" + "".join(f"{name:>11}" for name in COUNTERS)
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['job']:32}" + "".join(f"{row[name]:>11}" for name in COUNTERS))
    print(f"\nFactuSOL now has {clients} clients; Clientify has {contacts} contacts.")
    print(f"Reports, plans and rejects: {OUTPUT.relative_to(ROOT)}/ (reports/, plans/, rejects/)")
    print(f"Sandbox data (SQLite, kept for inspection): {WORK.relative_to(ROOT)}/")
    print("Browse it live: `make sandbox`, then http://127.0.0.1:8765/_sandbox/clients and")
    print("http://127.0.0.1:8766/_sandbox/contacts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
