"""TargetFactusol: Clientify `contacts` (tap-clientify) -> FactuSOL clients (F_CLI)."""

from __future__ import annotations

import sys
from typing import Any

from customer_sync import TEXT_FIELDS
from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.sinks import Sink
from typing_extensions import override

from target_factusol.errors import FatalRunError
from target_factusol.records import CONTACTS_STREAM
from target_factusol.run import SyncRun
from target_factusol.sinks import ContactsSink

_POLICIES = ("newest", "factusol", "clientify")
_FIELDS = TEXT_FIELDS  # the fields field_authority may name


class TargetFactusol(Target):
    """Upserts Clientify contacts into FactuSOL clients and writes the client code back."""

    name = "target-factusol"
    default_sink_class = ContactsSink

    # Same names, order, descriptions and defaults as meltano.yml (a test keeps them in step).
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
            description="Your DELSOL customer (licensee) code.",
        ),
        th.Property(
            "base_datos",
            th.StringType,
            required=True,
            description="Company database id, e.g. FS001.",
        ),
        th.Property(
            "password",
            th.StringType,
            required=True,
            secret=True,
            description="FactuSOL API password (plain text).",
        ),
        th.Property(
            "ejercicio",
            th.StringType,
            default="auto",
            description=(
                "Fiscal year to write. `auto` = the current year if it exists, "
                "else the newest earlier one."
            ),
        ),
        th.Property(
            "clientify_api_url",
            th.StringType,
            default="https://api.clientify.net/v1",
            description=(
                "Clientify API base URL, for writing the new client code back to the contact."
            ),
        ),
        th.Property(
            "clientify_api_key",
            th.StringType,
            required=True,
            secret=True,
            description="Clientify API key, for writing the new client code back to the contact.",
        ),
        th.Property(
            "clientify_rate_limit",
            th.IntegerType,
            default=5,
            description=(
                "Maximum requests per second sent to Clientify (link write-back and lookups)."
            ),
        ),
        th.Property(
            "country",
            th.StringType,
            default="ES",
            description=(
                "Default ISO alpha-2 country for phones and PAICLI when a contact has none."
            ),
        ),
        th.Property(
            "link_field",
            th.StringType,
            default="factusol_id",
            description="Contact custom field holding the FactuSOL client code.",
        ),
        th.Property(
            "tag",
            th.StringType,
            default="factusol",
            description="Tag added to contacts the sync links to a client (empty = no tag).",
        ),
        th.Property(
            "missing_client",
            th.StringType,
            default="reject",
            allowed_values=["reject", "recreate"],
            description=(
                "What to do with a contact whose factusol_id names a client that does not exist."
            ),
        ),
        th.Property(
            "match_fallback",
            th.ArrayType(th.CustomType({"type": "string", "enum": ["nif", "email"]})),
            default=["nif", "email"],
            description=(
                "Keys used to adopt an unlinked existing client before creating one, "
                "in order (nif, email)."
            ),
        ),
        th.Property(
            "ambiguous_match",
            th.StringType,
            default="reject",
            allowed_values=["reject", "create"],
            description=(
                "A contact without a link whose NIF points to one client and e-mail to another: "
                "reject it with the candidates (link it by hand), or create a new client."
            ),
        ),
        th.Property(
            "conflict_policy",
            th.StringType,
            default="newest",
            allowed_values=["newest", "factusol", "clientify"],
            description=(
                "Who wins a field changed on both sides since the last sync (or, with no ledger "
                "entry yet, a field the two sides hold differently)."
            ),
        ),
        th.Property(
            "field_authority",
            th.ObjectType(
                *(
                    th.Property(field, th.CustomType({"type": "string", "enum": list(_POLICIES)}))
                    for field in _FIELDS
                ),
                additional_properties=False,
            ),
            description='Per-field owner overriding conflict_policy, e.g. {"phone": "factusol"}.',
        ),
        th.Property(
            "timezone",
            th.StringType,
            description=(
                "IANA time zone of FactuSOL's dates (FUMCLI). Default: the Clientify account's "
                "time_zone, else Europe/Madrid."
            ),
        ),
        th.Property(
            "ledger_uri",
            th.StringType,
            default="output/ledger/sync-ledger.sqlite",
            description=(
                "The sync ledger (values each linked pair last agreed on): a SQLite file path or "
                "a SQLAlchemy URL such as postgresql+psycopg://user:pw@host/db. Shared by both "
                "targets; empty = no ledger (conflict policy on dates only)."
            ),
        ),
        th.Property(
            "dry_run",
            th.BooleanType,
            default=False,
            description="Read and plan only; write nothing to FactuSOL or Clientify.",
        ),
        th.Property(
            "plan_file",
            th.StringType,
            default="output/plans/target-factusol.jsonl",
            description="JSON-lines plan of every action.",
        ),
        th.Property(
            "reject_file",
            th.StringType,
            default="output/rejects/target-factusol.jsonl",
            description=(
                "JSON-lines file of rejected records (replayable Singer messages plus reason)."
            ),
        ),
        th.Property(
            "report_file",
            th.StringType,
            default="output/reports/target-factusol.json",
            description="JSON end-of-run report.",
        ),
        th.Property(
            "max_reject_percent",
            th.IntegerType,
            default=20,
            description="Fail the run when more than this percentage of records is rejected.",
        ),
        th.Property(
            "index_cache_file",
            th.StringType,
            default="output/cache/clientify-contacts.sqlite",
            description=(
                "Where the index of Clientify contacts is kept between runs, so a run reads only "
                "what changed since the last one: a SQLite file, or a PostgreSQL URL such as "
                "postgresql+psycopg://user:pw@host/db (empty = one full scan per run)."
            ),
        ),
        th.Property(
            "index_rescan_hours",
            th.IntegerType,
            default=168,
            description=(
                "Scan every contact again when the index cache's last full scan is older than "
                "this many hours (deleted contacts are detected on every run by their count)."
            ),
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
            description="Retries of a transient failure before the run stops.",
        ),
        th.Property(
            "max_workers",
            th.IntegerType,
            default=8,
            description=(
                "Concurrent writes (FactuSOL creations keep unique codes; all Clientify calls "
                "stay under clientify_rate_limit)."
            ),
        ),
    ).to_dict()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One run-level object shared by every sink (a schema change creates a new sink): the
        # API clients, the code allocator, the indexes and the counters live once per run.
        self._sync_run: SyncRun | None = None

    @property
    def sync_run(self) -> SyncRun:
        """The run's state, created (and the credentials checked) on first use."""
        if self._sync_run is None:
            self._sync_run = SyncRun.start(dict(self.config), logger=self.logger)
        return self._sync_run

    @override
    def get_sink_class(self, stream_name: str) -> type[Sink]:
        if stream_name != CONTACTS_STREAM:
            raise FatalRunError(
                f"target-factusol loads only the `{CONTACTS_STREAM}` stream of tap-clientify, "
                f"got stream `{stream_name}`. Deselect it, or rename it with stream maps "
                f'(stream_maps: {{"{stream_name}": {{"__alias__": "{CONTACTS_STREAM}"}}}}) '
                "if it carries Clientify contacts."
            )
        return ContactsSink

    @classmethod
    @override
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        # A run-stopping problem is one clear line and exit 1, not a traceback.
        try:
            super().invoke(*args, **kwargs)
        except FatalRunError as exc:
            cls.logger.error("%s", exc)
            sys.exit(1)


if __name__ == "__main__":
    TargetFactusol.cli()
