"""TargetFactusol: Clientify `contacts` (tap-clientify) -> FactuSOL clients (F_CLI)."""

from __future__ import annotations

from singer_sdk import typing as th
from target_runtime import RuntimeTarget
from target_runtime.settings import (
    api_url,
    clientify_api_key,
    factusol_credentials,
    output_files,
    shared,
)

from target_factusol.sinks import ContactsSink, FactusolRun


class TargetFactusol(RuntimeTarget):
    """Upserts Clientify contacts into FactuSOL clients and writes the client code back."""

    name = "target-factusol"
    default_sink_class = ContactsSink
    run_class = FactusolRun

    # Same names, order, descriptions and defaults as meltano.yml (a test keeps them in step).
    config_jsonschema = th.PropertiesList(
        api_url(
            "api_url", "factusol", "FactuSOL API base URL. HTTPS is required except on loopback."
        ),
        *factusol_credentials(),
        th.Property(
            "ejercicio",
            th.StringType,
            default="auto",
            description=(
                "Fiscal year to write. `auto` = the current year if it exists, "
                "else the newest earlier one."
            ),
        ),
        api_url(
            "clientify_api_url",
            "clientify",
            "Clientify API base URL, for writing the new client code back to the contact.",
        ),
        clientify_api_key(
            "clientify_api_key",
            "Clientify API key, for writing the new client code back to the contact.",
        ),
        th.Property(
            "clientify_rate_limit",
            th.IntegerType,
            default=5,
            description=(
                "Maximum requests per second sent to Clientify (link write-back and lookups)."
            ),
        ),
        shared("country"),
        shared("link_field", description="Contact custom field holding the FactuSOL client code."),
        shared(
            "tag",
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
        shared(
            "match_fallback",
            description=(
                "Keys used to adopt an unlinked existing client before creating one, "
                "in order (nif, email)."
            ),
        ),
        shared(
            "ambiguous_match",
            description=(
                "A contact without a link whose NIF points to one client and e-mail to another: "
                "reject it with the candidates (link it by hand), or create a new client."
            ),
        ),
        shared("conflict_policy"),
        shared(
            "field_authority",
            description='Per-field owner overriding conflict_policy, e.g. {"phone": "factusol"}.',
        ),
        shared("timezone"),
        shared("ledger_uri"),
        shared("retention_days"),
        shared(
            "dry_run", description="Read and plan only; write nothing to FactuSOL or Clientify."
        ),
        *output_files(
            "target-factusol",
            plan_file="JSON-lines plan of every action.",
            report_file="JSON end-of-run report.",
        ),
        shared("max_reject_percent"),
        shared("index_cache_file"),
        shared("index_rescan_hours"),
        shared("timeout"),
        shared(
            "max_retries",
            default=5,
            description="Retries of a transient failure before the run stops.",
        ),
        shared(
            "max_workers",
            description=(
                "Concurrent writes (FactuSOL creations keep unique codes; all Clientify calls "
                "stay under clientify_rate_limit)."
            ),
        ),
    ).to_dict()


if __name__ == "__main__":
    TargetFactusol.cli()
