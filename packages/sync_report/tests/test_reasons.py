"""Reject codes and the targets' reason sentences, explained for office staff."""

from __future__ import annotations

import pytest
from sync_report import REJECT_CODES, code_for_reason, explain_reject

BRIEF_CODES = {
    "ambiguous_match",
    "claimed_by_several",
    "missing_client",
    "invalid_record",
    "no_name",
    "api_refused",
    "link_conflict",
    "vanished",
}


def test_every_code_of_the_contract_is_explained_in_both_languages() -> None:
    assert set(REJECT_CODES) == BRIEF_CODES
    for code in REJECT_CODES:
        exp = explain_reject(code, "whatever", source="Clientify", dest="FactuSOL")
        assert exp.code == code
        texts = [exp.title_es, exp.title_en, exp.what_es, exp.what_en, exp.todo_es, exp.todo_en]
        assert all(text.strip() for text in texts)
        # the placeholders are filled, and the Spanish text is not the English one
        assert not any("{" in text for text in texts)
        assert exp.what_es != exp.what_en


def test_fix_it_where_it_came_from() -> None:
    one = explain_reject("invalid_record", "", source="FactuSOL", dest="Clientify")
    other = explain_reject("invalid_record", "", source="Clientify", dest="FactuSOL")
    assert "en FactuSOL" in one.todo_es
    assert "in FactuSOL" in one.todo_en
    assert "en Clientify" in other.todo_es
    assert "in Clientify" in other.todo_en


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        # target-clientify
        (
            "not linked: several contacts with the same nif (1 (unlinked), 2 (unlinked)); never "
            "merged or guessed: link one by hand (set its factusol_id to 5) or fix the nif",
            "ambiguous_match",
        ),
        (
            "not linked: the only contact with the same email (7 (linked to factusol_id=9)); "
            "never merged or guessed: link one by hand (set its factusol_id to 5) or fix the email",
            "link_conflict",
        ),
        (
            "2 Clientify contacts carry factusol_id=5 (ids 1, 2); merge them in Clientify, then "
            "run again",
            "claimed_by_several",
        ),
        ("Clientify refused it: POST /v1/contacts/ -> 400: emails: Enter a valid", "api_refused"),
        ("contact vanished during the run, next run re-creates it: 404", "vanished"),
        ("mapping failed: bad value", "invalid_record"),
        ("no usable client code (factusol_id: not a number)", "invalid_record"),
        ("record has no code (key property of stream 'clients'): no client code", "invalid_record"),
        # target-factusol
        (
            "factusol_id 12 is also on contact 135000001: one FactuSOL client cannot be linked "
            "to two contacts",
            "claimed_by_several",
        ),
        (
            "factusol_id 999 names a FactuSOL client that does not exist (missing_client: reject)",
            "missing_client",
        ),
        (
            "several FactuSOL clients carry this contact's creation marker: 3, 4",
            "claimed_by_several",
        ),
        (
            "cannot link by nif: candidate FactuSOL clients 3, 4; set factusol_id on the contact "
            "by hand",
            "ambiguous_match",
        ),
        (
            "cannot link by email: candidate FactuSOL clients 3 (already linked: 3); set "
            "factusol_id on the contact by hand",
            "link_conflict",
        ),
        ("contact has no name and no company name to create a client", "no_name"),
        ("FactuSOL refused the write: FactuSOL /admin/EscribirRegistro answered X", "api_refused"),
        ("Clientify refused the link write-back: 400", "api_refused"),
        ("record does not match the contacts schema (type at $.first_name)", "invalid_record"),
        ("record has a date-time field that cannot be parsed", "invalid_record"),
        ("factusol_id 'abc' is not a positive integer client code", "invalid_record"),
        ("contact id is not an integer", "invalid_record"),
    ],
)
def test_the_targets_reason_sentences_are_recognised(reason: str, code: str) -> None:
    assert code_for_reason(reason) == code
    assert explain_reject(None, reason).code == code


def test_a_code_wins_over_the_reason_text() -> None:
    exp = explain_reject("vanished", "Clientify refused it: 400")
    assert exp.code == "vanished"


def test_unknown_code_and_reason_fall_back_to_the_raw_reason() -> None:
    exp = explain_reject("new_code_from_the_future", "the moon is in the wrong phase")
    assert exp.code is None
    assert exp.title_en == "Other reason"
    assert "technical reason" in exp.what_en
    # an unknown code with a recognisable sentence still explains the sentence
    assert explain_reject("new_code", "contact has no name").code == "no_name"
    # junk types are tolerated
    assert explain_reject(["x"], {"y": 1}).code is None
