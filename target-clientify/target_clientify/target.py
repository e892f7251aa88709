"""TargetClientify: FactuSOL `clients` records -> Clientify contacts, keyed by factusol_id."""

from __future__ import annotations

import sys
import threading
from typing import Any

from singer_sdk import Sink, Target
from singer_sdk import typing as th
from typing_extensions import override

from target_clientify.records import INPUT_STREAM, MATCH_KEYS, TargetClientifyError
from target_clientify.run import ClientifyRun
from target_clientify.sinks import ClientsSink

POLICIES = ["newest", "factusol", "clientify"]


class TargetClientify(Target):
    """Upsert FactuSOL clients (tap-factusol `clients`) into Clientify contacts.

    Finds each contact by the `factusol_id` custom field (one paged scan per run), links an
    unlinked contact by NIF or e-mail on the first run, creates the rest, and updates only the
    fields that changed. Rejected records go to a replayable reject file; every action goes to a
    plan file; a dry run writes nothing.
    """

    name = "target-clientify"
    default_sink_class = ClientsSink

    # Descriptions and defaults are those of meltano.yml (a test keeps them equal).
    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_url",
            th.StringType,
            default="https://api.clientify.net/v1",
            description="Clientify API v1 base URL.",
        ),
        th.Property(
            "api_key",
            th.StringType,
            required=True,
            secret=True,
            description="Clientify API key.",
        ),
        th.Property(
            "country",
            th.StringType,
            description=(
                "ISO alpha-2 country used to normalize phones. "
                "Default: the Clientify account's country."
            ),
        ),
        th.Property(
            "link_field",
            th.StringType,
            default="factusol_id",
            description=(
                "Contact custom field holding the FactuSOL client code (created when missing)."
            ),
        ),
        th.Property(
            "tag",
            th.StringType,
            default="factusol",
            description="Tag added to contacts the sync creates or links (empty = no tag).",
        ),
        th.Property(
            "match_fallback",
            th.ArrayType(th.StringType(allowed_values=list(MATCH_KEYS))),
            default=["nif", "email"],
            description=(
                "Keys used to link an unlinked existing contact before creating one, in order "
                "(nif, email). Empty = link by factusol_id only."
            ),
        ),
        th.Property(
            "ambiguous_match",
            th.StringType(allowed_values=["reject", "create"]),
            default="reject",
            description=(
                "A client without a linked contact whose NIF points to one contact and e-mail "
                "to another: reject it with the candidates (link it by hand), or create a new "
                "contact."
            ),
        ),
        th.Property(
            "conflict_policy",
            th.StringType(allowed_values=POLICIES),
            default="newest",
            description=(
                "Who wins a field changed on both sides since the last sync (or, with no ledger "
                "entry yet, a field the two sides hold differently)."
            ),
        ),
        th.Property(
            "field_authority",
            th.ObjectType(additional_properties=th.StringType(allowed_values=POLICIES)),
            description=(
                'Per-field owner overriding conflict_policy, e.g. {"email": "clientify"}.'
            ),
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
            description="Read and plan only; write nothing to Clientify.",
        ),
        th.Property(
            "plan_file",
            th.StringType,
            default="output/plans/target-clientify.jsonl",
            description=(
                "JSON-lines plan of every action (written on every run; the review file of a "
                "dry run)."
            ),
        ),
        th.Property(
            "reject_file",
            th.StringType,
            default="output/rejects/target-clientify.jsonl",
            description=(
                "JSON-lines file of rejected records (replayable Singer messages plus reason)."
            ),
        ),
        th.Property(
            "report_file",
            th.StringType,
            default="output/reports/target-clientify.json",
            description=(
                "JSON end-of-run report (created, updated, unchanged, rejected, API calls)."
            ),
        ),
        th.Property(
            "max_reject_percent",
            th.IntegerType,
            default=20,
            description="Fail the run when more than this percentage of records is rejected.",
        ),
        th.Property(
            "rate_limit",
            th.IntegerType,
            default=5,
            description="Maximum requests per second sent to Clientify.",
        ),
        th.Property(
            "max_workers",
            th.IntegerType,
            default=8,
            description="Concurrent writes (all under the rate limit).",
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
            "factusol_api_url",
            th.StringType,
            default="https://api.sdelsol.com",
            description=(
                "FactuSOL API base URL, read only: first-run matching counts how many clients "
                "share a NIF or e-mail."
            ),
        ),
        th.Property(
            "factusol_codigo_fabricante",
            th.StringType,
            description="FactuSOL developer (fabricante) code (optional, see factusol_api_url).",
        ),
        th.Property(
            "factusol_codigo_cliente",
            th.StringType,
            description="FactuSOL customer (licensee) code (optional, see factusol_api_url).",
        ),
        th.Property(
            "factusol_base_datos",
            th.StringType,
            description="FactuSOL company database id, e.g. FS001 (optional).",
        ),
        th.Property(
            "factusol_password",
            th.StringType,
            secret=True,
            description="FactuSOL API password (optional, see factusol_api_url).",
        ),
        th.Property(
            "factusol_ejercicio",
            th.StringType,
            default="auto",
            description="FactuSOL fiscal year to read (`auto`: the current one if it exists).",
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
            default=6,
            description=(
                "Retries of a transient failure (429, 5xx, timeouts) before the run stops."
            ),
        ),
    ).to_dict()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One stream: draining it in the main thread keeps errors plain (no joblib wrapping).
        self.max_parallelism = 1
        self._run: ClientifyRun | None = None
        self._run_lock = threading.Lock()

    @property
    def run(self) -> ClientifyRun:
        """The run's shared state (client, index, writers, counters), started on first use.

        Started lazily, at the first SCHEMA of `clients`: credentials, the link custom field
        and the account country are checked once per run, before any record is processed.
        """
        with self._run_lock:
            if self._run is None:
                run = ClientifyRun(dict(self.config), self.logger)
                try:
                    run.start()
                except BaseException:
                    run.close()  # nothing to report yet, but no handle left open
                    raise
                self._run = run
            return self._run

    @override
    def get_sink_class(self, stream_name: str) -> type[Sink]:
        if stream_name != INPUT_STREAM:
            raise TargetClientifyError(
                f"target-clientify only loads the '{INPUT_STREAM}' stream of tap-factusol; "
                f"got stream '{stream_name}'. Deselect it, or rename it with a stream map "
                f'(stream_maps: {{"{stream_name}": {{"__alias__": "{INPUT_STREAM}"}}}}) '
                f"if it carries the same fields."
            )
        return ClientsSink

    @override
    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: Any = None,
        file_input: Any = None,
    ) -> None:
        try:
            super().invoke(
                about=about, about_format=about_format, config=config, file_input=file_input
            )
        except TargetClientifyError as exc:
            # One clear line instead of a traceback: the message says what to fix.
            cls.logger.error("%s", exc)
            sys.exit(1)


if __name__ == "__main__":
    TargetClientify.cli()
