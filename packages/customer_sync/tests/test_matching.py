"""The first-run matching rule as tables, fed with the data a real Spanish SMB has."""

from collections import Counter

import pytest
from customer_sync import (
    MatchCandidate,
    decide_match,
    is_placeholder_nif,
    link_code,
    nif_identity,
)


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [
        ("00000000T", True),
        ("00000000-T", True),
        ("ES00000000T", True),
        ("11111111H", True),
        ("99999999R", True),
        ("B00000000", True),
        ("X0000000T", True),
        ("12345678Z", True),
        ("SIN NIF", True),
        ("sin nif", True),
        ("N/A", True),
        ("-", True),
        ("", True),
        ("PENDIENTE", True),
        ("B12345674", False),
        ("ESB12345674", False),
        ("47384951Y", False),
        ("FR40303265045", False),
    ],
)
def test_placeholder_nifs(value, placeholder):
    assert is_placeholder_nif(value) is placeholder
    if placeholder:
        assert nif_identity(value) is None


@pytest.mark.parametrize(
    ("typed", "identity"),
    [
        ("X123456S", None),  # a placeholder once padded (X0123456S): both forms identify nobody
        ("X0123456S", None),
        ("y579135d", "Y0579135D"),
        ("5.837.261-e", "05837261E"),
        ("ES B-12345674", "B12345674"),
    ],
)
def test_a_nif_identity_is_its_own_identity(typed, identity):
    # a contact index keys contacts by nif_identity and is looked up with identities
    assert nif_identity(typed) == identity
    if identity is not None:
        assert nif_identity(identity) == identity


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (" 10001 ", 10001),
        ("0010001", 10001),
        (10001, 10001),
        (10001.0, 10001),
        ("", None),
        (None, None),
        ("10001A", None),
        ("-5", None),
        ("0", None),
        (True, None),
        ("1e3", None),
    ],
)
def test_link_codes_are_normalized(value, code):
    assert link_code(value) == code


class Side:
    """One system's records for the census: id -> (nif, emails, linked_to)."""

    def __init__(self, records):
        self.records = records

    def count(self, kind, key):
        return sum(1 for r in self.records.values() if key in self.keys(r, kind))

    @staticmethod
    def keys(record, kind):
        nif, emails, _linked = record
        if kind == "nif":
            identity = nif_identity(nif)
            return {identity} if identity else set()
        return {e.lower() for e in emails}

    def holders(self, kind, key):
        return [
            MatchCandidate(rid, nif_identity(r[0]), r[2])
            for rid, r in self.records.items()
            if key in self.keys(r, kind)
        ]


def decide(customer, source, destination, keys=("nif", "email")):
    nif, emails = customer
    return decide_match(
        nif=nif,
        emails=emails,
        source_holders=source.count,
        destination_holders=destination.holders,
        keys=keys,
    )


NIF_A, NIF_B = "B12345674", "47384951Y"


def test_one_candidate_by_nif_links():
    src = Side({1: (NIF_A, ["a@x.es"], None)})
    dst = Side({77: (NIF_A, [], None)})
    decision = decide((NIF_A, ["a@x.es"]), src, dst)
    assert (decision.action, decision.candidate.key, decision.how) == ("link", 77, "same nif")


def test_a_dni_typed_without_its_leading_zero_links_to_the_padded_one():
    src = Side({1: ("5.837.261-e", [], None)})
    dst = Side({77: ("05837261E", [], None)})
    decision = decide(("5.837.261-e", []), src, dst)
    assert (decision.action, decision.candidate.key, decision.how) == ("link", 77, "same nif")


def test_nif_and_email_on_the_same_record_is_one_candidate():
    src = Side({1: (NIF_A, ["a@x.es"], None)})
    dst = Side({77: (NIF_A, ["A@x.es"], None)})
    decision = decide((NIF_A, ["a@x.es"]), src, dst)
    assert (decision.action, decision.how) == ("link", "same nif and email")


def test_nif_to_one_record_and_email_to_another_is_ambiguous():
    src = Side({1: (NIF_A, ["a@x.es"], None)})
    dst = Side({77: (NIF_A, [], None), 78: ("", ["a@x.es"], None)})
    decision = decide((NIF_A, ["a@x.es"]), src, dst)
    assert decision.action == "ambiguous"
    assert decision.candidate_keys == [77, 78]


def test_placeholder_nif_never_matches():
    src = Side({1: ("00000000T", [], None)})
    dst = Side({77: ("00000000T", [], None)})
    assert decide(("00000000T", []), src, dst).action == "create"


def test_branches_under_one_nif_identify_none_of_them():
    # three branches of one company in FactuSOL, the head office typed once in the CRM
    src = Side({1: (NIF_A, [], None), 2: (NIF_A, [], None), 3: (NIF_A, [], None)})
    dst = Side({77: (NIF_A, [], None)})
    decision = decide((NIF_A, []), src, dst)
    assert decision.action == "create"
    assert "shared by 3 FactuSOL records" in decision.notes[0]


def test_a_nif_shared_on_the_destination_identifies_none():
    src = Side({1: (NIF_A, [], None)})
    dst = Side({77: (NIF_A, [], None), 78: (NIF_A, [], "5")})
    assert decide((NIF_A, []), src, dst).action == "create"


def test_gestoria_email_shared_by_a_dozen_clients_never_matches():
    src = Side({i: ("", ["asesoria@gestoria.es"], None) for i in range(1, 13)})
    dst = Side({77: ("", ["asesoria@gestoria.es"], None)})
    assert decide(("", ["asesoria@gestoria.es"]), src, dst).action == "create"


def test_company_email_held_as_second_address_by_several_contacts():
    src = Side({1: ("", ["info@empresa.es"], None)})
    dst = Side(
        {
            77: (NIF_B, ["ana@empresa.es", "info@empresa.es"], None),
            78: ("", ["luis@empresa.es", "info@empresa.es"], None),
        }
    )
    assert decide(("", ["info@empresa.es"]), src, dst).action == "create"


def test_candidate_linked_to_another_customer_is_not_a_candidate():
    src = Side({1: ("", ["ana@x.es"], None)})
    dst = Side({77: ("", ["ana@x.es"], "9")})
    decision = decide(("", ["ana@x.es"]), src, dst)
    assert decision.action == "create"
    assert "already linked to 9" in decision.notes[0]


def test_email_match_refused_when_both_hold_different_valid_nifs():
    src = Side({1: (NIF_A, ["compras@x.es"], None)})
    dst = Side({77: (NIF_B, ["compras@x.es"], None)})
    assert decide((NIF_A, ["compras@x.es"]), src, dst).action == "create"


@pytest.mark.parametrize("other_nif", ["", "00000000T", "not a nif"])
def test_email_match_allowed_when_one_side_has_no_valid_nif(other_nif):
    # a contact typed by hand in the CRM with the person's e-mail and no NIF
    src = Side({1: (NIF_A, ["ana@x.es"], None)})
    dst = Side({77: (other_nif, ["Ana@X.es"], None)})
    assert decide((NIF_A, ["ana@x.es"]), src, dst).action == "link"


def test_match_fallback_limits_the_keys():
    src = Side({1: (NIF_A, ["ana@x.es"], None)})
    dst = Side({77: ("", ["ana@x.es"], None)})
    assert decide((NIF_A, ["ana@x.es"]), src, dst, keys=["nif"]).action == "create"
    assert decide((NIF_A, ["ana@x.es"]), src, dst, keys=[]).action == "create"


def test_a_census_that_does_not_know_the_customer_yet_counts_it_as_unique():
    src = Side({})
    dst = Side({77: (NIF_A, [], None)})
    assert decide((NIF_A, []), src, dst).action == "link"


def test_every_customer_of_a_messy_book_is_linked_or_created_never_lost():
    """Whatever the keys, the rule only ever answers link, create or a listed ambiguity."""
    fs = {
        1: (NIF_A, ["info@a.es"], None),
        2: (NIF_A, ["info@a.es"], None),
        3: ("00000000T", ["gestor@g.es"], None),
        4: ("SIN NIF", ["gestor@g.es"], None),
        5: (NIF_B, ["luis@b.es"], None),
        6: ("", [], None),
        7: ("", ["solo@c.es"], None),
    }
    cl = {
        70: (NIF_A, ["info@a.es"], None),
        71: ("00000000T", ["gestor@g.es"], None),
        72: ("", ["luis@b.es"], None),
        73: (NIF_B, [], None),
        74: ("", ["solo@c.es"], "99"),
    }
    src, dst = Side(fs), Side(cl)
    outcomes = Counter(decide(fs[code][:2], src, dst).action for code in fs)
    assert outcomes == Counter({"create": 6, "ambiguous": 1})


def test_key_index_counts_identities_only():
    from customer_sync import KeyIndex

    index = KeyIndex()
    index.add(1, nif="B-12345674", emails=["Info@A.es", "bad@", None])
    index.add(2, nif="00000000T", emails=["info@a.es"])
    index.add(3, nif="ESB12345674", emails=[])
    assert index.holders("nif", "B12345674") == [1, 3]
    assert index.count("email", "info@a.es") == 2
    assert index.holders("nif", "00000000T") == []  # a placeholder is no key
    assert index.nif_of(1) == "B12345674"
    index.add(1, nif="", emails=["otro@a.es"])  # a new version replaces the old keys
    assert index.holders("nif", "B12345674") == [3]
    index.remove(3)
    assert index.count("nif", "B12345674") == 0
    assert index.records == 2
    index.close()


def test_a_link_must_hold_both_ways():
    # FactuSOL X: NIF N and e-mail e; Clientify A holds N, B holds e. From X it is ambiguous;
    # from A alone X looks unique, but X also matches B: A must not adopt X either.
    fs = Side({"X": (NIF_A, ["e@x.es"], None)})
    cl = Side({"A": (NIF_A, [], None), "B": ("", ["e@x.es"], None)})

    def from_contact(contact_id):
        nif, emails, _ = cl.records[contact_id]
        return decide_match(
            nif=nif,
            emails=emails,
            source_holders=cl.count,
            destination_holders=fs.holders,
            self_key=contact_id,
            confirm=lambda client: decide_match(
                nif=fs.records[client.key][0],
                emails=fs.records[client.key][1],
                source_holders=fs.count,
                destination_holders=cl.holders,
                self_key=client.key,
            ),
        )

    assert decide((NIF_A, ["e@x.es"]), fs, cl).action == "ambiguous"
    for contact_id in ("A", "B"):
        decision = from_contact(contact_id)
        assert decision.action == "ambiguous", contact_id
        assert decision.candidate_keys == ["X"]
    # a unique pair confirms itself
    cl.records.pop("B")
    assert from_contact("A").action == "link"
