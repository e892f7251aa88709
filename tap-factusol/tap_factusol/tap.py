"""FactuSOL tap class."""

from __future__ import annotations

import sys

from singer_sdk import Tap
from singer_sdk import typing as th

from tap_factusol import streams

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override


class TapFactusol(Tap):
    """Singer tap for FactuSOL (Software DELSOL) clients, table F_CLI, via api.sdelsol.com."""

    name = "tap-factusol"

    # Names and descriptions match the tap-factusol settings in meltano.yml.
    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_url",
            th.StringType,
            default="https://api.sdelsol.com",
            description="FactuSOL API base URL. HTTPS is required except on loopback.",
        ),
        th.Property(
            "codigo_fabricante",
            th.StringType,
            required=True,
            description="Developer (fabricante) code issued by Software DELSOL.",
        ),
        th.Property(
            "codigo_cliente",
            th.StringType,
            required=True,
            description="Your DELSOL customer (licensee) code, from the API activation e-mail.",
        ),
        th.Property(
            "base_datos",
            th.StringType,
            required=True,
            description="Company database id, e.g. FS001 (baseDatosCliente).",
        ),
        th.Property(
            "password",
            th.StringType,
            required=True,
            secret=True,
            description="API password (plain text; the client Base64-encodes it for login).",
        ),
        th.Property(
            "ejercicio",
            th.StringType,
            default="auto",
            description=(
                "Fiscal year to read. `auto` = the current year if its database exists, "
                "else the newest earlier one."
            ),
        ),
        th.Property(
            "sync_mode",
            th.StringType,
            default="modified",
            allowed_values=["modified", "full"],
            description=(
                "`full` emits every client; `modified` emits clients changed since the "
                "bookmark (first run: the last lookback_hours)."
            ),
        ),
        th.Property(
            "lookback_hours",
            th.IntegerType,
            default=24,
            description="Window of the first modified run when there is no bookmark and no "
            "start_date.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description=(
                "Absolute earliest modification date for the first modified run (overrides "
                "lookback_hours). Never use a relative date."
            ),
        ),
        th.Property(
            "page_size",
            th.IntegerType,
            default=500,
            description="Rows per keyset page (SELECT TOP n ... WHERE CODCLI > last).",
        ),
        th.Property(
            "include_all_columns",
            th.BooleanType,
            default=False,
            description=(
                "Also emit every other F_CLI column under its lower-cased name (for warehouses)."
            ),
        ),
        th.Property(
            "timezone",
            th.StringType,
            default="Europe/Madrid",
            description="Time zone of FactuSOL's naive dates (FUMCLI, FALCLI).",
        ),
        th.Property(
            "timeout",
            th.IntegerType,
            default=30,
            description="HTTP timeout in seconds for each API call.",
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=5,
            description=(
                "Retries of a transient failure (KO, 429, 5xx, timeouts) before the run stops."
            ),
        ),
    ).to_dict()

    @override
    def discover_streams(self) -> list[streams.ClientsStream]:
        """Return the tap's streams."""
        return [streams.ClientsStream(self)]


if __name__ == "__main__":
    TapFactusol.cli()
