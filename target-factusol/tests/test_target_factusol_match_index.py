"""ClientMatchIndex: the F_CLI NIF / e-mail lookup first-run matching uses (SQLite, not dicts)."""

from __future__ import annotations

from target_factusol.match_index import ClientMatchIndex


def test_lookups_keep_insertion_order_and_remove_undoes_add() -> None:
    index = ClientMatchIndex()
    index.add(7, "B12345678", "a@x.es")
    index.add(3, "B12345678", None)
    index.add(9, None, "a@x.es")
    index.add(4, "", "")  # nothing to index
    assert index.by_nif("B12345678") == [7, 3]
    assert index.by_email("a@x.es") == [7, 9]
    assert index.by_nif("") == []
    assert index.nif_of(7) == "B12345678"
    assert index.nif_of(9) is None
    assert (index.nifs, index.emails) == (2, 2)

    index.add(20, "X1234567L", "new@x.es")  # a client planned in this run
    index.remove(20, "X1234567L", "new@x.es")  # its write was refused
    assert index.by_nif("X1234567L") == []
    assert index.by_email("new@x.es") == []
    assert index.nif_of(20) is None
    index.close()
