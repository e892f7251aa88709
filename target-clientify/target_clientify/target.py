"""TargetClientify: FactuSOL `clients` records -> Clientify contacts, keyed by factusol_id."""

from __future__ import annotations

from singer_sdk import typing as th
from target_runtime import (
    RuntimeTarget,
    api_url,
    clientify_api_key,
    factusol_credentials,
    output_files,
    shared,
)

from target_clientify.sinks import ClientifyRun, ClientsSink


class TargetClientify(RuntimeTarget):
    """Upsert FactuSOL clients (tap-factusol `clients`) into Clientify contacts.

    Finds each contact by the `factusol_id` custom field (one paged scan per run), links an
    unlinked contact by NIF or e-mail on the first run, creates the rest, and updates only the
    fields that changed. Rejected records go to a replayable reject file; every action goes to a
    plan file; a dry run writes nothing.
    """

    name = "target-clientify"
    default_sink_class = ClientsSink
    run_class = ClientifyRun

    # Descriptions and defaults are those of meltano.yml (a test keeps them equal).
    config_jsonschema = th.PropertiesList(
        api_url("api_url", "clientify", "Clientify API v1 base URL."),
        clientify_api_key("api_key", "Clientify API key."),
        shared("country"),
        shared(
            "link_field",
            description=(
                "Contact custom field holding the FactuSOL client code (created when missing)."
            ),
        ),
        shared(
            "tag", description="Tag added to contacts the sync creates or links (empty = no tag)."
        ),
        shared(
            "match_fallback",
            description=(
                "Keys used to link an unlinked existing contact before creating one, in order "
                "(nif, email). Empty = link by factusol_id only."
            ),
        ),
        shared(
            "ambiguous_match",
            description=(
                "A client without a linked contact whose NIF points to one contact and e-mail "
                "to another: reject it with the candidates (link it by hand), or create a new "
                "contact."
            ),
        ),
        shared("conflict_policy"),
        shared(
            "field_authority",
            description='Per-field owner overriding conflict_policy, e.g. {"email": "clientify"}.',
        ),
        shared("timezone"),
        shared("ledger_uri"),
        shared("retention_days"),
        shared("dry_run", description="Read and plan only; write nothing to Clientify."),
        *output_files(
            "target-clientify",
            plan_file=(
                "JSON-lines plan of every action (written on every run; the review file of a "
                "dry run)."
            ),
            report_file=(
                "JSON end-of-run report (created, updated, unchanged, rejected, API calls)."
            ),
        ),
        shared("max_reject_percent"),
        th.Property(
            "rate_limit",
            th.IntegerType,
            default=5,
            description="Maximum requests per second sent to Clientify.",
        ),
        shared("max_workers", description="Concurrent writes (all under the rate limit)."),
        shared("index_cache_file"),
        shared("index_rescan_hours"),
        api_url(
            "factusol_api_url",
            "factusol",
            "FactuSOL API base URL, read only: first-run matching counts how many clients "
            "share a NIF or e-mail.",
        ),
        *factusol_credentials("factusol_", required=False),
        th.Property(
            "factusol_ejercicio",
            th.StringType,
            default="auto",
            description="FactuSOL fiscal year to read (`auto`: the current one if it exists).",
        ),
        shared("timeout"),
        shared(
            "max_retries",
            default=6,
            description=(
                "Retries of a transient failure (429, 5xx, timeouts) before the run stops."
            ),
        ),
    ).to_dict()


if __name__ == "__main__":
    TargetClientify.cli()
