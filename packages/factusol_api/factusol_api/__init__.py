"""Client for the FactuSOL cloud API (api.sdelsol.com). No singer_sdk here.

See docs/architecture.md for the contract and README.md for usage.
"""

from factusol_api.client import (
    DEFAULT_API_URL,
    FactusolClient,
    FactusolCredentials,
    check_api_url,
    rows_to_dicts,
)
from factusol_api.columns import F_CLI_COLUMNS, F_CLI_PRIMARY_KEY, ColumnKind, ColumnSpec
from factusol_api.errors import (
    FactusolAuthError,
    FactusolDatabaseMissingError,
    FactusolError,
    FactusolRecordError,
    FactusolRecordExistsError,
    FactusolTransientError,
)
from factusol_api.sql import sql_columns, sql_identifier, sql_int, sql_literal

__all__ = [
    "DEFAULT_API_URL",
    "F_CLI_COLUMNS",
    "F_CLI_PRIMARY_KEY",
    "ColumnKind",
    "ColumnSpec",
    "FactusolAuthError",
    "FactusolClient",
    "FactusolCredentials",
    "FactusolDatabaseMissingError",
    "FactusolError",
    "FactusolRecordError",
    "FactusolRecordExistsError",
    "FactusolTransientError",
    "check_api_url",
    "rows_to_dicts",
    "sql_columns",
    "sql_identifier",
    "sql_int",
    "sql_literal",
]
