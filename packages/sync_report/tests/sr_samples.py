"""Output directories as the targets leave them, for the report page tests.

`write_sample_output` writes one realistic world: the last FactuSOL -> Clientify run (updates,
a link, creations, a conflict, rejects, a failed and a dry run in its history) and a dry run of
Clientify -> FactuSOL. `HOSTILE` holds values that try to break out of HTML, attributes, inline
SVG text, comments, CDATA and templates; `hostile_corpus` loads tests/fixtures/hostile.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
HOSTILE_DIR = REPO / "tests" / "fixtures" / "hostile"
LAST_RUN = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)  # 09:00 in Madrid

# Each, if it ever ran, sets window.__pwned and the title; the test asserts neither happened.
HOSTILE = (
    '<script>window.__pwned=1;document.title="pwned"</script>',
    "<img src=x onerror=\"window.__pwned=2;document.title='pwned'\">",
    '"><img src=x onerror=window.__pwned=3>',
    "'><svg onload=window.__pwned=4>",
    "</script><script>window.__pwned=5</script>",
    "</title><script>window.__pwned=6</script>",
    "</text></svg><svg onload=window.__pwned=7><text>",
    '<iframe srcdoc="<script>parent.__pwned=8</script>"></iframe>',
    '<a href="javascript:window.__pwned=9" id="pwnlink">x</a>',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__pwned=10">',
    '<base href="https://attacker.example/">',
    "<style>body{display:none}</style>",
    "{{ 7*7 }}{% if true %}ssti{% endif %}",
    "<!-- ]]> <![CDATA[ x ]]>",
    "&lt;script&gt;window.__pwned=11&lt;/script&gt;",
    "\u2028\u2029\x00\x1b[31m",
    "<math><mi xlink:href=javascript:window.__pwned=12>x</mi></math>",
    '<form action="javascript:window.__pwned=13"><button>x</button></form>',
    # short enough to reach the chart's SVG <title> whole (run times are cut to 40 there)
    "</text><svg onload=__pwned=14>",
    "</title><img src=x onerror=__pwned=15>",
)


def _lines(path: Path, items: Iterable[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")


def _report(counts: Mapping[str, int], *, at: datetime, **extra: Any) -> dict[str, Any]:
    full = {name: counts.get(name, 0) for name in ("created", "linked", "updated", "unchanged")}
    full.update(rejected=counts.get("rejected", 0), conflicts=counts.get("conflicts", 0))
    return {
        **full,
        "counts": {**full, "warnings": 0},
        "processed": sum(full.values()) - full["conflicts"],
        "api_calls": {"read": 4, "write": 9},
        "status": "ok",
        "error": None,
        "dry_run": False,
        "region": "ES",
        "started_at": (at - timedelta(seconds=40)).isoformat(),
        "finished_at": at.isoformat(),
        **extra,
    }


def _reject(stream: str, record: Mapping[str, Any], key: object, **meta: Any) -> dict[str, Any]:
    return {
        "type": "RECORD",
        "stream": stream,
        "record": dict(record),
        "_reject": {"key": key, **meta},
    }


CLIENT_SCHEMA = {
    "type": "SCHEMA",
    "stream": "clients",
    "schema": {"type": "object", "properties": {"code": {"type": "integer"}}},
    "key_properties": ["code"],
}
CONTACT_SCHEMA = {
    "type": "SCHEMA",
    "stream": "contacts",
    "schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
    "key_properties": ["id"],
}


def write_sample_output(out: Path) -> Path:
    """The realistic world described above, under ``out``; returns ``out``."""
    reports, plans, rejects = out / "reports", out / "plans", out / "rejects"
    reports.mkdir(parents=True, exist_ok=True)

    # ---- FactuSOL -> Clientify: the last real run
    last = {
        "created": 2,
        "linked": 1,
        "updated": 3,
        "unchanged": 412,
        "rejected": 3,
        "conflicts": 1,
    }
    report = _report(last, at=LAST_RUN)
    (reports / "target-clientify.json").write_text(json.dumps(report, indent=2), "utf-8")
    history = []
    shapes = [
        (0, 0, 2, 0),
        (1, 0, 4, 0),
        (0, 0, 1, 1),
        (3, 2, 6, 0),
        (0, 0, 0, 0),
        (1, 0, 2, 2),
        (0, 0, 3, 0),
        (2, 1, 5, 1),
        (0, 0, 1, 0),
        (4, 0, 7, 2),
        (1, 0, 2, 0),
        (0, 0, 4, 1),
    ]
    for i, (created, linked, updated, rejected) in enumerate(shapes):
        at = LAST_RUN - timedelta(hours=len(shapes) - i)
        extra: dict[str, Any] = {}
        if i == 4:
            extra = {"status": "failed", "error": "FactuSOL API down"}
        if i == 7:
            extra = {"dry_run": True, "status": "dry_run"}
        counts = {"created": created, "linked": linked, "updated": updated, "unchanged": 400}
        counts.update(rejected=rejected, conflicts=1 if i in (3, 9) else 0)
        history.append(_report(counts, at=at, **extra))
    history.append(report)
    _lines(reports / "target-clientify.history.jsonl", history)

    _lines(
        plans / "target-clientify.jsonl",
        [
            {
                "action": "update",
                "key": 17,
                "target_id": 135000042,
                "diffs": [
                    {
                        "field": "email",
                        "before": "ana.garcia@gmail.com",
                        "after": "ana.garcia@construccionesperez.es",
                    },
                    {"field": "mobile", "before": "+34600112233", "after": "+34611223344"},
                ],
                "reason": None,
            },
            {"action": "unchanged", "key": 18, "target_id": 135000043, "diffs": [], "reason": None},
            {
                "action": "update",
                "key": 23,
                "target_id": 135000051,
                "diffs": [
                    {"field": "address", "before": "C/ Mayor 3", "after": "Calle Mayor 3, 2º B"},
                    {"field": "postal_code", "before": "8001", "after": "08001"},
                ],
                "reason": None,
            },
            {
                "action": "update",
                "key": 31,
                "target_id": 135000055,
                "diffs": [
                    {
                        "field": "name",
                        "before": "Nuñez y Asociados SL",
                        "after": "Núñez y Asociados, S.L.",
                    }
                ],
                "reason": None,
            },
            {
                "action": "link",
                "key": 44,
                "target_id": 135000060,
                "diffs": [
                    {"field": "factusol_id", "before": None, "after": "44"},
                    {"field": "phone", "before": "", "after": "+34954112233"},
                ],
                "reason": None,
            },
            {
                "action": "create",
                "key": 77,
                "target_id": 135000077,
                "diffs": [
                    {"field": "factusol_id", "before": None, "after": "77"},
                    {"field": "name", "before": None, "after": "Talleres Ibáñez Ruiz, S.L."},
                    {"field": "nif", "before": None, "after": "B86503811"},
                    {"field": "phone", "before": None, "after": "+34954112233"},
                ],
                "reason": None,
            },
            {
                "action": "create",
                "key": 78,
                "target_id": 135000078,
                "diffs": [
                    {"field": "factusol_id", "before": None, "after": "78"},
                    {"field": "name", "before": None, "after": "María José Fernández Gómez"},
                    {"field": "email", "before": None, "after": "mjfernandez@ejemplo.es"},
                ],
                "reason": None,
            },
            {
                "action": "conflict",
                "key": 17,
                "target_id": 135000042,
                "diffs": [{"field": "phone", "before": "+34611000000", "after": "+34912345678"}],
                "reason": "phone: Clientify wins; the FactuSOL change is not applied",
                "winner": "clientify",
                "values": {"factusol": "+34912345678", "clientify": "+34611000000"},
            },
            {
                "action": "reject",
                "key": 52,
                "target_id": None,
                "diffs": [],
                "reason": "not linked: several contacts with the same nif (135000070 "
                "(unlinked), 135000071 (unlinked)); never merged or guessed: link one by hand "
                "(set its factusol_id to 52) or fix the nif",
                "code": "ambiguous_match",
                "candidates": [135000070, 135000071],
            },
            {
                "action": "reject",
                "key": 58,
                "target_id": None,
                "diffs": [],
                "reason": "Clientify refused it: POST /v1/contacts/ -> 400: emails: Enter a "
                "valid email address.",
            },
        ],
    )
    old = (LAST_RUN - timedelta(days=2)).isoformat()
    _lines(
        rejects / "target-clientify.jsonl",
        [
            CLIENT_SCHEMA,
            _reject(
                "clients",
                {"code": 61, "fiscal_name": "Hermanos Ruiz Jiménez, C.B.", "nif": "E1234"},
                61,
                reason="mapping failed: nif 'E1234' is not a valid NIF/CIF/NIE",
                at=old,
            ),
            _reject(
                "clients",
                {"code": 61, "fiscal_name": "Hermanos Ruiz Jiménez, C.B.", "nif": "E1234"},
                61,
                reason="mapping failed: nif 'E1234' is not a valid NIF/CIF/NIE",
                at=(LAST_RUN - timedelta(days=1)).isoformat(),
            ),
            _reject(
                "clients",
                {"code": 52, "fiscal_name": "Construcciones Pérez Núñez, S.L."},
                52,
                reason="not linked: several contacts with the same nif (135000070 (unlinked), "
                "135000071 (unlinked)); never merged or guessed: link one by hand (set its "
                "factusol_id to 52) or fix the nif",
                at=LAST_RUN.isoformat(),
                code="ambiguous_match",
                candidates=[135000070, 135000071],
            ),
            _reject(
                "clients",
                {"code": 58, "fiscal_name": "Talleres Ibáñez", "email": "taller@@ibanez"},
                58,
                reason="Clientify refused it: POST /v1/contacts/ -> 400: emails: Enter a valid "
                "email address.",
                at=LAST_RUN.isoformat(),
            ),
        ],
    )

    # ---- Clientify -> FactuSOL: a dry run
    dry = {
        "created": 1,
        "linked": 1,
        "updated": 1,
        "unchanged": 60,
        "rejected": 2,
        "conflicts": 1,
    }
    dry_at = LAST_RUN + timedelta(minutes=20)
    report = _report(dry, at=dry_at, dry_run=True, status="dry_run")
    (reports / "target-factusol.json").write_text(json.dumps(report, indent=2), "utf-8")
    history = [
        _report({"updated": n, "created": n % 2, "unchanged": 60}, at=dry_at - timedelta(hours=h))
        for h, n in ((4, 2), (3, 1), (2, 3), (1, 0))
    ]
    _lines(reports / "target-factusol.history.jsonl", [*history, report])
    _lines(
        plans / "target-factusol.jsonl",
        [
            {
                "action": "create",
                "key": 135000080,
                "target_id": None,
                "diffs": [
                    {"field": "name", "before": None, "after": "Lucía Ortega Marín"},
                    {"field": "email", "before": None, "after": "lucia.ortega@example.es"},
                ],
                "reason": None,
            },
            {
                "action": "update",
                "key": 135000001,
                "target_id": 76,
                "diffs": [{"field": "name", "before": "José Soler Ortiz", "after": "José Soler"}],
                "reason": None,
            },
            {
                "action": "link",
                "key": 135000090,
                "target_id": 12,
                "diffs": [],
                "reason": "same nif",
            },
            {
                "action": "conflict",
                "key": 135000005,
                "target_id": 9,
                "diffs": [
                    {"field": "email", "before": "info@pereznunez.es", "after": "ventas@pn.es"}
                ],
                "reason": "FactuSOL wins (policy newest)",
            },
            {
                "action": "reject",
                "key": 135000077,
                "target_id": 999,
                "diffs": [],
                "reason": "factusol_id 999 names a FactuSOL client that does not exist "
                "(missing_client: reject)",
            },
            {
                "action": "reject",
                "key": 135000078,
                "target_id": None,
                "diffs": [],
                "reason": "contact has no name and no company name to create a client",
                "code": "no_name",
            },
        ],
    )
    return out


def add_hostile(out: Path, payloads: Iterable[str] = HOSTILE) -> list[str]:
    """Put every payload where the page prints data (names, values, field names, keys, ids,
    reasons, codes, candidates, conflict values and winners, run times in the SVG chart, the
    run's error), in both directions. Returns the payloads used."""
    payloads = list(payloads)
    for target, _stream, schema in (
        ("target-clientify", "clients", CLIENT_SCHEMA),
        ("target-factusol", "contacts", CONTACT_SCHEMA),
    ):
        plan = out / "plans" / f"{target}.jsonl"
        rej = out / "rejects" / f"{target}.jsonl"
        hist = out / "reports" / f"{target}.history.jsonl"
        with plan.open("a", encoding="utf-8") as fh_plan, rej.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(schema) + "\n")
            for i, p in enumerate(payloads):
                lines = [
                    {
                        "action": "update",
                        "key": p,
                        "target_id": p,
                        "diffs": [{"field": p, "before": p, "after": p}],
                        "reason": p,
                    },
                    {
                        "action": "link",
                        "key": f"L{i}",
                        "target_id": 1,
                        "diffs": [{"field": "email", "before": p, "after": p}],
                        "reason": p,
                    },
                    {
                        "action": "create",
                        "key": p,
                        "target_id": p,
                        "diffs": [{"field": p, "before": None, "after": p}],
                        "reason": p,
                    },
                    {
                        "action": "conflict",
                        "key": p,
                        "target_id": p,
                        "field": p,
                        "diffs": [{"field": p, "before": p, "after": p}],
                        "reason": p,
                        "winner": p,
                        "values": {"factusol": p, "clientify": p},
                    },
                    {
                        "action": "reject",
                        "key": f"P{i}",
                        "target_id": p,
                        "diffs": [],
                        "reason": p,
                        "code": p,
                        "candidates": [p, p],
                    },
                ]
                for line in lines:
                    fh_plan.write(json.dumps(line, ensure_ascii=False) + "\n")
                record = {
                    "code": p,
                    "id": p,
                    "fiscal_name": p,
                    "first_name": p,
                    "last_name": p,
                    "company_name": p,
                }
                fh.write(
                    json.dumps(
                        _reject(p, record, f"R{i}", reason=p, at=p, code=p, candidates=[p]),
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        with hist.open("a", encoding="utf-8") as fh:
            for p in payloads:
                fh.write(json.dumps({"finished_at": p, "status": p, "updated": 1}) + "\n")
        report_path = out / "reports" / f"{target}.json"
        report = json.loads(report_path.read_text("utf-8"))
        report.update(status="failed", error=" | ".join(payloads))
        report_path.write_text(json.dumps(report), "utf-8")
    return payloads


def hostile_corpus() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The repository's hostile clients and contacts (each line: case, record, stream)."""

    def load(name: str) -> list[dict[str, Any]]:
        text = (HOSTILE_DIR / name).read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    return load("clients.jsonl"), load("contacts.jsonl")


def _leaf(record: Any, path: str) -> Any:
    """The value a corpus case is about: ``address.street`` -> ``addresses[0].street``."""
    value = record
    for part in path.split("."):
        if isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, dict):
            return None
        for name in (part, part + "s", part + "es"):
            if name in value:
                value = value[name]
                break
        else:
            return None
    if isinstance(value, list):
        value = value[0] if value else None
    return value


def add_corpus(out: Path) -> int:
    """Every corpus record as a reject (with its values in a diff of the plan, too) in the
    direction it feeds. Returns how many records were added. ASCII JSON: the corpus holds lone
    surrogates, which only escaped JSON can carry."""
    clients, contacts = hostile_corpus()
    added = 0
    for target, stream, schema, cases in (
        ("target-clientify", "clients", CLIENT_SCHEMA, clients),
        ("target-factusol", "contacts", CONTACT_SCHEMA, contacts),
    ):
        plan = out / "plans" / f"{target}.jsonl"
        rej = out / "rejects" / f"{target}.jsonl"
        with plan.open("a", encoding="utf-8") as fh_plan, rej.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(schema) + "\n")
            for n, case in enumerate(cases):
                record = case["record"]
                key = f"corpus-{n}"
                fh.write(
                    json.dumps(
                        _reject(stream, record, key, reason=f"{case['case']}: {case['kind']}"),
                    )
                    + "\n"
                )
                value = _leaf(record, str(case.get("field") or ""))
                fh_plan.write(
                    json.dumps(
                        {
                            "action": "update",
                            "key": key,
                            "target_id": n,
                            "diffs": [
                                {"field": case.get("field"), "before": value, "after": value}
                            ],
                            "reason": None,
                        },
                    )
                    + "\n"
                )
                added += 1
    return added
