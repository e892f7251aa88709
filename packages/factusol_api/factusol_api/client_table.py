"""The F_CLI (clients) helpers of `FactusolClient`: keyset reads, lookups by code, writes.

`ClientTableMixin` builds its SQL from whitelisted column names and integers only, and runs it
through the client's `query`, `load_table`, `insert` and `update`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from factusol_api.columns import F_CLI_COLUMNS, F_CLI_PRIMARY_KEY
from factusol_api.errors import FactusolError
from factusol_api.routes import ROUTE_QUERY
from factusol_api.sql import sql_columns, sql_int

__all__ = ["ClientTableMixin"]


class ClientTableMixin:
    """F_CLI reads and writes on top of the client's generic table calls."""

    if TYPE_CHECKING:
        # Provided by FactusolClient.
        def load_table(self, table: str, filtro: str = "1=1") -> list[dict[str, Any]]: ...

        def query(self, sql: str) -> list[dict[str, Any]]: ...

        def insert(self, table: str, record: Mapping[str, Any]) -> None: ...

        def update(self, table: str, record: Mapping[str, Any]) -> None: ...

    def iter_client_pages(
        self,
        *,
        page_size: int = 500,
        columns: Sequence[str] | None = None,
        after_code: int = 0,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield F_CLI rows one keyset page at a time, in ascending CODCLI order.

        Each page is ``SELECT TOP n <cols> FROM F_CLI WHERE CODCLI > <last> ORDER BY CODCLI``
        (``LanzarConsulta``): there is no LIMIT/OFFSET (reference §5.1), and keyset pages stay
        correct while rows are inserted. Pages are fetched lazily, so memory holds one page.
        ``columns=None`` selects ``*``; otherwise CODCLI is always included.
        """
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError("page_size must be a positive integer")
        if columns is None:
            projection = "*"
        else:
            names = sql_columns(columns, F_CLI_COLUMNS)
            if F_CLI_PRIMARY_KEY not in names:
                names.insert(0, F_CLI_PRIMARY_KEY)
            projection = ", ".join(dict.fromkeys(names))
        last = int(sql_int(after_code))
        first = True
        while True:
            # Safe: page_size and last are ints, projection is whitelisted column names.
            sql = f"SELECT TOP {page_size} {projection} FROM F_CLI WHERE CODCLI > {last}"  # noqa: S608
            rows = self.query(sql + " ORDER BY CODCLI")
            if not rows:
                if first and columns is not None:
                    self._check_projection_not_silently_empty(last, projection)
                return
            first = False
            high = max(int(sql_int(row.get(F_CLI_PRIMARY_KEY))) for row in rows)
            if high <= last:
                raise FactusolError(
                    f"keyset paging of F_CLI did not advance past CODCLI {last}", route=ROUTE_QUERY
                )
            yield rows
            if len(rows) < page_size:
                return
            last = high

    def _check_projection_not_silently_empty(self, last: int, projection: str) -> None:
        # A column the server lacks makes a read return null, not an error (reference §5.1):
        # tell that apart from "no rows" with a query that names only CODCLI.
        probe = self.query(f"SELECT TOP 1 CODCLI FROM F_CLI WHERE CODCLI > {last}")  # noqa: S608
        if probe:
            raise FactusolError(
                f"F_CLI read of columns {projection} returned no rows although F_CLI has "
                "rows; a column probably does not exist in this database",
                route=ROUTE_QUERY,
            )

    def iter_clients(
        self,
        *,
        page_size: int = 500,
        columns: Sequence[str] | None = None,
        after_code: int = 0,
    ) -> Iterator[dict[str, Any]]:
        """Yield F_CLI rows one by one in ascending CODCLI order (see :meth:`iter_client_pages`)."""
        for page in self.iter_client_pages(
            page_size=page_size, columns=columns, after_code=after_code
        ):
            yield from page

    def newest_clients(
        self, top: int, *, columns: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """The ``top`` most recently modified clients, newest first (one ``LanzarConsulta``).

        ``SELECT TOP n <cols> FROM F_CLI WHERE FUMCLI IS NOT NULL ORDER BY FUMCLI DESC,
        CODCLI DESC``: no date literal (their syntax is unconfirmed, reference §8.4 item 6); NULLs
        are filtered out whatever end they sort to (§9); the key ends the ORDER BY so ``TOP``
        never returns a tie group (Access returns every row tied at the cut, §9). ``columns=None``
        selects ``*``; otherwise CODCLI and FUMCLI are always included. The caller must check the
        order it got: the engine's date ordering is not confirmed.
        """
        size = int(sql_int(top))
        if size < 1:
            raise ValueError("top must be a positive integer")
        if columns is None:
            projection = "*"
        else:
            names = sql_columns(columns, F_CLI_COLUMNS)
            projection = ", ".join(dict.fromkeys([F_CLI_PRIMARY_KEY, "FUMCLI", *names]))
        # Safe: size is an int, projection is whitelisted column names.
        return self.query(
            f"SELECT TOP {size} {projection} FROM F_CLI WHERE FUMCLI IS NOT NULL "  # noqa: S608
            "ORDER BY FUMCLI DESC, CODCLI DESC"
        )

    def get_clients(self, codes: Iterable[int], *, batch_size: int = 500) -> list[dict[str, Any]]:
        """Fetch full F_CLI rows by CODCLI (``CargaTabla`` with ``CODCLI IN (…)``), sorted by code.

        Codes that do not exist are simply absent from the result.

        Raises:
            ValueError: a code is not an integer (checked before any call).
        """
        if batch_size < 1:
            raise ValueError("batch_size must be a positive integer")
        wanted = sorted({int(sql_int(code)) for code in codes})
        rows: list[dict[str, Any]] = []
        for start in range(0, len(wanted), batch_size):
            batch = wanted[start : start + batch_size]
            rows.extend(self.load_table("F_CLI", f"CODCLI IN ({', '.join(str(c) for c in batch)})"))
        rows.sort(key=lambda row: int(sql_int(row.get(F_CLI_PRIMARY_KEY))))
        return rows

    def max_client_code(self) -> int:
        """Return the highest CODCLI, 0 when F_CLI is empty (for ``MAX+1`` numbering, §5.4)."""
        rows = self.query("SELECT TOP 1 CODCLI FROM F_CLI ORDER BY CODCLI DESC")
        if not rows:
            return 0
        return int(sql_int(rows[0].get(F_CLI_PRIMARY_KEY)))

    def insert_client(self, row: Mapping[str, Any]) -> None:
        """Insert one F_CLI row; CODCLI is required (the API never assigns it, §5.4)."""
        self.insert("F_CLI", row)

    def update_client(self, row: Mapping[str, Any]) -> None:
        """Update one F_CLI row by CODCLI with the other columns of ``row``."""
        self.update("F_CLI", row)

    # ------------------------------------------------------------------ write preparation
