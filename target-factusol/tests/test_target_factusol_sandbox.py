"""target-factusol against both sandboxes (real HTTP on loopback); fixtures named by behaviour."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import pytest
from factusol_api import FactusolClient, FactusolRecordExistsError
from target_factusol.markers import marker_ids
from target_factusol.sinks import FatalRunError
from target_factusol_testlib import API_KEY, PASSWORD, SEEDED_CLIENTS, Harness, link_of, messages

CONTACT = 135000001


def marked(clients: dict[int, dict[str, Any]], contact_id: int) -> list[int]:
    return [code for code, row in clients.items() if contact_id in marker_ids(row.get("OBSCLI"))]


def old_client_501(h: Harness) -> None:
    h.put_client(
        CODCLI=501,
        NOFCLI="Marta Ruiz Soler",
        NIFCLI="52873145D",
        EMACLI="marta.vieja@example.es",
        TELCLI="699111222",
        DOMCLI="Calle Vieja 1",
        POBCLI="Madrid",
        CPOCLI="28013",
        PROCLI="Madrid",
        PAICLI="724",
        TARCLI=3,
        FUMCLI="2025-01-01",
    )


# ----------------------------------------------------------------------------- creation


def with_records(msgs: list[dict], **values: Any) -> list[dict]:
    for msg in msgs:
        if msg["type"] == "RECORD":
            msg["record"].update(values)
    return msgs


def with_tags(msgs: list[dict], tags: list[str]) -> list[dict]:
    for msg in msgs:
        if msg["type"] == "RECORD":
            msg["record"]["tags"] = list(tags)
    return msgs


def test_new_contact_created_once_with_marker_and_linked(harness: Harness) -> None:
    msgs = with_tags(messages("new_contact"), ["vip"])
    harness.put_contacts(msgs)
    before = harness.clients()

    out = harness.run(msgs)

    after = harness.clients()
    new = {code: row for code, row in after.items() if code not in before}
    assert len(new) == 1
    code, row = next(iter(new.items()))
    assert code == max(before) + 1
    assert marker_ids(row["OBSCLI"]) == {CONTACT}
    assert row["NOFCLI"] == "Lucía Ferrer Gil"
    assert row["NIFCLI"] == "52873145D"
    assert row["TELCLI"] == "612345678"  # national form for the account's region
    assert row["PAICLI"] == "724"
    assert row["FALCLI"].startswith("20")
    assert link_of(harness.contacts()[CONTACT]) == str(code)
    assert [p["action"] for p in out.plan] == ["create"]
    assert out.report["counts"]["created"] == 1
    assert out.report["status"] == "ok"
    writes = harness.writes()
    assert writes["factusol"] == [("POST", "/admin/EscribirRegistro")]
    # One call links and tags: the tags just streamed, plus ours (a PUT replaces the list).
    assert writes["clientify"] == [("PUT", f"/v1/contacts/{CONTACT}/")]
    assert harness.contacts()[CONTACT]["tags"] == ["vip", "factusol"]


def test_tags_streamed_long_ago_are_not_written_back(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    msgs = with_tags(messages("new_contact"), ["vip"])
    harness.put_contacts(msgs)
    # The batch arrived more than FRESH_TAGS_SECONDS before its write-back.
    monkeypatch.setattr("target_runtime.sink.monotonic", lambda: time.monotonic() - 3600)

    harness.run(msgs)

    assert harness.writes()["clientify"] == [
        ("PUT", f"/v1/contacts/{CONTACT}/"),
        ("POST", f"/v1/contacts/{CONTACT}/tags/"),
    ]
    assert harness.contacts()[CONTACT]["tags"] == ["vip", "factusol"]


def test_second_run_on_current_data_makes_zero_writes(harness: Harness) -> None:
    msgs = messages("two_new_contacts")
    harness.put_contacts(msgs)
    harness.run(msgs)
    harness.clear_logs()

    out = harness.run(harness.current_messages())

    assert harness.writes() == {"factusol": [], "clientify": []}
    assert [p["action"] for p in out.plan] == ["unchanged", "unchanged"]
    # No-op costs: login + ejercicio probe + one read by key for the whole batch.
    reads = [r["path"] for r in harness.fs.requests_log()]
    assert reads.count("/admin/CargaTabla") == 1


def test_edited_contact_updates_only_its_client_and_changed_columns(harness: Harness) -> None:
    old_client_501(harness)
    msgs = messages("linked_contact_changed")
    harness.put_contacts(msgs)
    before = harness.clients()
    harness.clear_logs()

    out = harness.run(msgs)

    after = harness.clients()
    assert {c: r for c, r in after.items() if c != 501} == {
        c: r for c, r in before.items() if c != 501
    }
    changed = {k for k in after[501] if after[501][k] != before[501][k]}
    assert changed == {"EMACLI", "DOMCLI"}
    assert after[501]["EMACLI"] == "marta.nueva@example.es"
    assert after[501]["TARCLI"] == 3  # a column the sync does not own is untouched
    assert harness.writes()["factusol"] == [("POST", "/admin/ActualizarRegistro")]
    assert harness.writes()["clientify"] == []
    assert out.plan[0]["action"] == "update"
    assert {d["field"] for d in out.plan[0]["diffs"]} == {"email", "address"}


def test_factusol_newer_wins_conflicting_fields_and_logs_them(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    old_client_501(harness)
    msgs = messages("linked_contact_older_than_client")
    harness.put_contacts(msgs)
    harness.clear_logs()

    with caplog.at_level(logging.WARNING):
        out = harness.run(msgs)

    assert harness.writes()["factusol"] == []
    assert harness.clients()[501]["EMACLI"] == "marta.vieja@example.es"
    assert out.report["counts"]["conflicts"] == 2
    conflicts = [p for p in out.plan if p["action"] == "conflict"]
    assert {p["diffs"][0]["field"] for p in conflicts} == {"email", "address"}
    assert f"conflict: contact {CONTACT}, client 501, field email: FactuSOL wins" in caplog.text


def test_field_authority_overrides_policy(harness: Harness) -> None:
    old_client_501(harness)
    msgs = messages("linked_contact_older_than_client")
    harness.put_contacts(msgs)

    out = harness.run(msgs, field_authority={"email": "clientify"})

    row = harness.clients()[501]
    assert row["EMACLI"] == "marta.nueva@example.es"
    assert row["DOMCLI"] == "Calle Vieja 1"  # still FactuSOL's (newer)
    assert out.report["counts"]["conflicts"] == 1


# ----------------------------------------------------------------------------- crash safety


def test_failed_write_back_then_rerun_links_the_same_client(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    msgs = messages("new_contact")
    harness.put_contacts(msgs)

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed between the two writes")

    with monkeypatch.context() as m:
        m.setattr("target_factusol.write.Writer.after_insert", killed)
        with pytest.raises(KeyboardInterrupt):
            harness.run(msgs)
    assert len(marked(harness.clients(), CONTACT)) == 1
    assert link_of(harness.contacts()[CONTACT]) is None

    out = harness.run(harness.current_messages())

    codes = marked(harness.clients(), CONTACT)
    assert len(codes) == 1
    assert link_of(harness.contacts()[CONTACT]) == str(codes[0])
    assert [p["action"] for p in out.plan] == ["link"]
    assert out.plan[0]["reason"] == "creation marker"
    assert harness.writes()["factusol"] == [("POST", "/admin/EscribirRegistro")]


def test_link_field_that_cannot_be_created_stops_before_any_write(harness: Harness) -> None:
    msgs = messages("new_contact")
    # An account without the factusol_id definition that refuses to create one by API.
    harness.cl.admin("POST", "seed", {"contacts": 0, "with_link_field": False})
    harness.put_contacts(msgs)
    harness.cl.configure(switches={"custom_field_create": "reject"})

    with pytest.raises(FatalRunError, match="custom field"):
        harness.run(msgs)
    assert marked(harness.clients(), CONTACT) == []  # checked before any FactuSOL write

    harness.cl.configure(switches={"custom_field_create": "accept"})
    harness.run(msgs)
    assert len(marked(harness.clients(), CONTACT)) == 1


def test_code_taken_on_allocation_moves_to_next_code(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    msgs = messages("new_contact")
    harness.put_contacts(msgs)
    top = max(harness.clients())
    real_max = FactusolClient.max_client_code
    # Another writer took top+1 after we read MAX: our first insert answers BDExisteRegistro.
    monkeypatch.setattr(FactusolClient, "max_client_code", lambda self: real_max(self) - 1)

    harness.run(msgs)

    assert marked(harness.clients(), CONTACT) == [top + 1]
    log = [r["path"] for r in harness.fs.requests_log()]
    assert log.count("/admin/EscribirRegistro") == 2


def test_retried_insert_that_landed_is_adopted_not_duplicated(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    msgs = messages("new_contact")
    harness.put_contacts(msgs)
    top = max(harness.clients())
    real_insert = FactusolClient.insert_client

    def lost_answer(self: FactusolClient, row: dict[str, Any]) -> None:
        real_insert(self, row)  # lands, but the answer is lost; the retry sees the row
        raise FactusolRecordExistsError("BDExisteRegistro", code="BDExisteRegistro")

    monkeypatch.setattr(FactusolClient, "insert_client", lost_answer)
    out = harness.run(msgs)

    assert marked(harness.clients(), CONTACT) == [top + 1]
    assert [p["action"] for p in out.plan] == ["create"]
    assert link_of(harness.contacts()[CONTACT]) == str(top + 1)


# ----------------------------------------------------------------------------- safety


def test_injection_strings_stored_as_text_and_no_other_row_changes(harness: Harness) -> None:
    msgs = messages("injection_strings")
    harness.put_contacts(msgs)
    before = harness.clients()

    harness.run(msgs)

    after = harness.clients()
    assert {c: after[c] for c in before} == before
    (code,) = set(after) - set(before)
    row = after[code]
    assert row["NOFCLI"] == "' OR 1=1 -- '; DELETE FROM F_CLI; --"
    assert row["DOMCLI"] == "Robert'); DROP TABLE F_CLI;--"
    assert row["POBCLI"] == "x' OR 'a'='a"
    assert row["PROCLI"] == "[a-z]_%#"
    # The marker query (LIKE with letters only) still finds exactly this contact.
    harness.clear_logs()
    out = harness.run(harness.current_messages())
    assert [p["action"] for p in out.plan] == ["unchanged"]


def test_non_integer_factusol_id_is_rejected_with_reason(harness: Harness) -> None:
    msgs = messages("non_integer_factusol_id")
    before = harness.clients()

    out = harness.run(msgs, max_reject_percent=100)

    assert harness.clients() == before
    assert out.plan[0]["action"] == "reject"
    assert "not a positive integer" in out.plan[0]["reason"]
    assert out.rejects[0]["type"] == "SCHEMA"
    assert out.rejects[1]["_reject"]["key"] == CONTACT
    assert out.rejects[1]["record"]["id"] == CONTACT


def test_duplicate_contact_in_batch_keeps_last(harness: Harness) -> None:
    msgs = messages("duplicate_contact_in_batch")
    harness.put_contacts(msgs)

    out = harness.run(msgs)

    (code,) = marked(harness.clients(), CONTACT)
    assert harness.clients()[code]["TELCLI"] == "612000001"
    assert out.report["records_received"] == 2
    assert out.report["counts"]["created"] == 1


# ----------------------------------------------------------------------------- matching


def test_match_by_nif_adopts_unique_unlinked_client(harness: Harness) -> None:
    harness.put_client(CODCLI=601, NOFCLI="Sofía Lara", NIFCLI="31.415.926-L", FUMCLI="2025-01-01")
    msgs = messages("match_by_nif")
    harness.put_contacts(msgs)

    out = harness.run(msgs)

    assert link_of(harness.contacts()[CONTACT]) == "601"
    assert out.plan[0]["action"] == "link"
    assert out.plan[0]["reason"] == "same nif"
    assert marked(harness.clients(), CONTACT) == []  # nothing created
    assert harness.clients()[601]["EMACLI"] == "sofia.nueva@example.es"


def test_match_by_email_adopts_unique_unlinked_client(harness: Harness) -> None:
    harness.put_client(CODCLI=602, NOFCLI="Tomás Vega", EMACLI=" TOMAS.VEGA@example.es")
    msgs = messages("match_by_email")
    harness.put_contacts(msgs)

    out = harness.run(msgs)

    assert link_of(harness.contacts()[CONTACT]) == "602"
    link = next(p for p in out.plan if p["action"] == "link")
    assert link["reason"] == "same email"
    # No ledger entry yet: an empty value never replaces a non-empty one, so the contact's
    # phone and address fill the client's empty columns, whatever the dates say.
    assert {p["action"] for p in out.plan} == {"link"}
    client = harness.clients()[602]
    assert (client["TELCLI"], client["DOMCLI"]) == ("677000222", "Calle Mayor 1")


def test_a_verdict_for_factusol_at_link_time_holds_in_the_next_runs(harness: Harness) -> None:
    # FactuSOL saved after the contact's last edit: its differing value wins when the contact
    # is linked. The link write-back then makes the contact look newer; the ledger (not the
    # dates) keeps the verdict, so the next run does not overwrite the client.
    two_days_ago = (dt.date.today() - dt.timedelta(days=2)).isoformat()
    harness.put_client(
        CODCLI=602,
        NOFCLI="Tomás Vega Ruiz",
        EMACLI="tomas.vega@example.es",
        FUMCLI=two_days_ago,
    )
    msgs = messages("match_by_email")
    harness.put_contacts(msgs)

    first = harness.run(msgs)

    assert {p["action"] for p in first.plan} == {"link", "conflict"}
    conflict = next(p for p in first.plan if p["action"] == "conflict")
    assert conflict["winner"] == "factusol"
    assert conflict["values"] == {"factusol": "Tomás Vega Ruiz", "clientify": "Tomás Vega"}
    assert harness.clients()[602]["NOFCLI"] == "Tomás Vega Ruiz"
    harness.clear_logs()

    again = harness.run(harness.current_messages())

    assert harness.writes()["factusol"] == []
    assert harness.clients()[602]["NOFCLI"] == "Tomás Vega Ruiz"
    assert [p["action"] for p in again.plan] == ["unchanged"]


def test_ambiguous_match_is_rejected_with_candidate_codes(harness: Harness) -> None:
    # the contact's NIF is client 603's, its e-mail client 604's: which one is it?
    harness.put_client(CODCLI=603, NOFCLI="Raúl Doble", NIFCLI="27182818S")
    harness.put_client(CODCLI=604, NOFCLI="Raúl Doble SL", EMACLI="raul@doble.es")
    msgs = with_records(
        messages("new_contact"),
        taxpayer_identification_number="27182818-S",
        emails=[{"id": 104000001, "type": 4, "email": "Raul@Doble.es"}],
    )
    harness.put_contacts(msgs)
    before = harness.clients()

    out = harness.run(msgs, max_reject_percent=100)

    assert harness.clients() == before
    assert out.plan[0]["action"] == "reject"
    assert out.plan[0]["code"] == "ambiguous_match"
    assert out.plan[0]["candidates"] == [603, 604]
    assert "FactuSOL 603 (same nif); FactuSOL 604 (same email)" in out.plan[0]["reason"]
    assert link_of(harness.contacts()[CONTACT]) is None
    # ambiguous_match: create -> a new client, nothing merged
    created = harness.run(msgs, ambiguous_match="create")
    assert [p["action"] for p in created.plan] == ["create"]
    assert len(marked(harness.clients(), CONTACT)) == 1


@pytest.mark.parametrize(
    ("clients", "nif"),
    [
        # placeholder NIFs never match
        ([{"CODCLI": 603, "NIFCLI": "00000000T"}], "00000000T"),
        ([{"CODCLI": 603, "NIFCLI": "SIN NIF"}], "SIN NIF"),
        # branches under one NIF: it identifies none of them
        (
            [{"CODCLI": 603, "NIFCLI": "27182818S"}, {"CODCLI": 604, "NIFCLI": "ES27182818S"}],
            "27182818S",
        ),
    ],
)
def test_a_nif_that_identifies_nobody_creates_a_new_client(
    harness: Harness, clients: list[dict[str, Any]], nif: str
) -> None:
    for row in clients:
        harness.put_client(NOFCLI="Sucursal", **row)
    msgs = with_records(messages("new_contact"), taxpayer_identification_number=nif)
    harness.put_contacts(msgs)

    out = harness.run(msgs)

    assert [p["action"] for p in out.plan] == ["create"]
    (code,) = marked(harness.clients(), CONTACT)
    assert code not in {row["CODCLI"] for row in clients}


def test_empty_match_fallback_never_matches(harness: Harness) -> None:
    harness.put_client(CODCLI=601, NOFCLI="Sofía Lara", NIFCLI="31415926L")
    msgs = messages("match_by_nif")
    harness.put_contacts(msgs)

    out = harness.run(msgs, match_fallback=[])

    assert out.plan[0]["action"] == "create"
    assert link_of(harness.contacts()[CONTACT]) != "601"


# ----------------------------------------------------------------------------- missing client


def test_missing_client_rejected_by_default(harness: Harness) -> None:
    msgs = messages("missing_client")
    harness.put_contacts(msgs)

    out = harness.run(msgs, max_reject_percent=100)

    assert 777 not in harness.clients()
    assert "does not exist" in out.plan[0]["reason"]
    assert out.report["counts"]["rejected"] == 1


def test_missing_client_recreated_under_its_code(harness: Harness) -> None:
    msgs = messages("missing_client")
    harness.put_contacts(msgs)

    out = harness.run(msgs, missing_client="recreate")

    row = harness.clients()[777]
    assert row["NOFCLI"] == "Iker Etxeberria"
    assert marker_ids(row["OBSCLI"]) == {CONTACT}
    assert out.plan[0] == {**out.plan[0], "action": "create", "target_id": 777}
    assert harness.writes()["clientify"] == []  # already linked


# ----------------------------------------------------------------------------- dry run, ratio


def test_dry_run_writes_nothing_and_its_plan_is_what_the_real_run_does(harness: Harness) -> None:
    old_client_501(harness)
    harness.put_client(CODCLI=601, NOFCLI="Sofía Lara", NIFCLI="31415926L")
    msgs = messages("two_new_contacts")
    harness.put_contacts(msgs)
    before = harness.clients()
    harness.clear_logs()

    dry = harness.run(msgs, dry_run=True)

    assert harness.writes() == {"factusol": [], "clientify": []}
    assert harness.clients() == before
    assert dry.report["status"] == "dry_run"
    real = harness.run(msgs)
    assert real.plan == dry.plan
    assert [p["action"] for p in real.plan] == ["link", "create"]  # 501 has the same NIF


def test_reject_ratio_above_threshold_fails_loudly_without_state(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    msgs = messages("contacts_mostly_invalid")
    harness.put_contacts(msgs)

    with pytest.raises(FatalRunError, match=r"2 of 3 records rejected \(67%\)"):
        harness.run(msgs)

    out = harness.output(capsys)
    assert '"bookmarks"' not in out.stdout  # no STATE
    assert out.report["status"] == "failed"
    assert out.report["counts"]["rejected"] == 2


def test_other_stream_is_a_clear_error(harness: Harness) -> None:
    with pytest.raises(FatalRunError, match="got stream 'companies'"):
        harness.run("other_stream")


def test_stream_maps_can_alias_a_stream_to_contacts(harness: Harness) -> None:
    msgs = messages("new_contact")
    harness.put_contacts(msgs)
    renamed = [{**m, "stream": "people"} if "stream" in m else m for m in msgs]

    out = harness.run(renamed, stream_maps={"people": {"__alias__": "contacts"}})

    assert [p["action"] for p in out.plan] == ["create"]


def test_wrong_factusol_password_is_one_clear_line(harness: Harness) -> None:
    with pytest.raises(FatalRunError) as err:
        harness.run("new_contact", password="wrong")
    message = str(err.value)
    assert "FactuSOL" in message
    assert "fabricante=1234 cliente=56789 base_datos=FS001" in message
    assert "wrong" not in message
    assert "\n" not in message
    assert harness.writes() == {"factusol": [], "clientify": []}


def test_wrong_clientify_key_stops_before_any_write(harness: Harness) -> None:
    with pytest.raises(FatalRunError, match="Clientify") as err:
        harness.run("new_contact", clientify_api_key="not-the-key")
    assert "not-the-key" not in str(err.value)
    assert harness.writes() == {"factusol": [], "clientify": []}


def test_secrets_never_logged_at_debug(
    harness: Harness, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    msgs = messages("new_contact")
    harness.put_contacts(msgs)
    with caplog.at_level(logging.DEBUG):
        harness.run(msgs)
        with pytest.raises(FatalRunError):
            harness.run(msgs, password="wrong-" + PASSWORD)
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err
    assert "DEBUG" in caplog.text or caplog.records
    for secret in (PASSWORD, API_KEY, "c2FuZGJveC1wYXNzd29yZA"):  # and its Base64 form
        assert secret not in text


def test_seeded_clients_untouched_by_a_create(harness: Harness) -> None:
    msgs = messages("new_contact")
    harness.put_contacts(msgs)
    before = harness.clients()
    assert len(before) >= SEEDED_CLIENTS - 1
    harness.run(msgs)
    after = harness.clients()
    assert all(after[c] == before[c] for c in before)


def test_schema_invalid_record_is_rejected_and_a_bad_date_read_as_unknown(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    msgs = messages("invalid_records_among_valid")
    harness.put_contacts(sorted(msgs, key=lambda m: m.get("record", {}).get("id", 0)))

    with caplog.at_level(logging.WARNING):
        out = harness.run(msgs, max_reject_percent=100)

    assert len(marked(harness.clients(), CONTACT)) == 1
    reasons = [p["reason"] for p in out.plan if p["action"] == "reject"]
    # the same rule as target-clientify: a schema failure is rejected with its reason
    assert reasons == ["record does not match the contacts schema (type at $.first_name)"]
    # a date-time that does not parse is no reason to drop the contact: read as unknown
    assert len(marked(harness.clients(), 135000003)) == 1
    assert "contact 135000003: modified: is not a valid date-time (unknown)" in caplog.text
    assert all("__fcsync" not in json_line for json_line in map(str, out.rejects))


def test_email_clientify_would_refuse_is_warned_and_left_out(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # a 300-character local part: Django's validator and RFC 5321 refuse it; it never travels
    msgs = messages("email_invalid_by_django_rules")
    harness.put_contacts(messages("new_contact"))

    with caplog.at_level(logging.WARNING):
        out = harness.run(msgs)

    (code,) = marked(harness.clients(), CONTACT)
    assert harness.clients()[code]["EMACLI"] == ""
    assert f"contact {CONTACT}: email: not a valid email address" in caplog.text
    assert out.report["counts"]["warnings"] >= 1
