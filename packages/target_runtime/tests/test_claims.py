"""Claims kept out of the heap behave as the dicts they replaced."""

from __future__ import annotations

from clientify_api import ContactIndex
from target_runtime import Claims


def _claims() -> Claims:
    return Claims("factusol_id", lambda: ContactIndex(field="factusol_id"))


def test_contact_ids_keep_their_type_and_7_is_not_the_string_7() -> None:
    claims = _claims()
    assert claims.claim(1, 7)
    assert claims.claim(2, "7")
    assert claims.claim(3, -1)  # a dry run's placeholder
    assert claims.claimed(1) == 7
    assert claims.claimed("0002") == "7"
    assert claims.claimed(3) == -1
    assert claims.claimed(4) is None
    assert claims.client_of({"id": 7}) == "1"
    assert claims.client_of({"id": "7"}) == "2"
    assert claims.client_of({"id": -1}) == "3"
    claims.close()


def test_a_contact_claiming_twice_is_known_by_its_latest_code_until_released() -> None:
    claims = _claims()
    assert claims.claim(10, 5)
    assert claims.claim(11, 5)  # a recreation took another code for the same contact
    assert claims.client_of({"id": 5}) == "11"
    claims.release(10)  # not the contact's latest: its reverse link stays
    assert claims.client_of({"id": 5}) == "11"
    assert claims.claimed(10) is None
    assert claims.claim(10, 6)  # a released code can be claimed again
    claims.release(11)
    assert claims.client_of({"id": 5}) is None
    claims.release(99)  # nothing claimed: nothing to do
    claims.close()


def test_many_claims_answer_like_few() -> None:
    claims = _claims()
    for code in range(1, 20_001):
        assert claims.claim(code, 100_000 + code)
    assert not claims.claim(20_000, 1)
    assert claims.claimed(12_345) == 112_345
    assert claims.contact_of(19_999) == "119999"
    assert claims.client_of({"id": 100_001}) == "1"
    claims.close()
