"""tap-clientify: Clientify contacts as a Singer stream (full or modified since the bookmark)."""

from __future__ import annotations

from clientify_api import DEFAULT_API_URL, MAX_PAGE_SIZE
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from typing_extensions import override

from tap_clientify.streams import ContactsStream


class TapClientify(Tap):
    """Singer tap for Clientify (API v1) contacts: `full`, or `modified` since the bookmark."""

    name = "tap-clientify"

    # Same settings and descriptions as meltano.yml (and the README table from --about).
    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_url",
            th.StringType,
            default=DEFAULT_API_URL,
            description=(
                "Clientify API v1 base URL (https://api.clientify.com/v1 is the alternative host)."
            ),
        ),
        th.Property(
            "api_key",
            th.StringType(nullable=False),
            required=True,
            secret=True,
            title="API key",
            description=(
                "Clientify API key (Settings > Integrations > API, "
                "or POST /api-auth/obtain_token/)."
            ),
        ),
        th.Property(
            "sync_mode",
            th.StringType,
            default="modified",
            allowed_values=["modified", "full"],
            description=(
                "`full` emits every contact; `modified` emits contacts changed since the "
                "bookmark (first run: the last lookback_hours)."
            ),
        ),
        th.Property(
            "lookback_hours",
            th.IntegerType(minimum=1),
            default=24,
            description=(
                "Window of the first modified run when there is no bookmark and no start_date."
            ),
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description=(
                "Absolute earliest modification date for the first modified run "
                "(overrides lookback_hours)."
            ),
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE),
            default=MAX_PAGE_SIZE,
            description="Contacts per page (the API caps it at 100).",
        ),
        th.Property(
            "rate_limit",
            th.IntegerType(minimum=1),
            default=5,
            description="Maximum requests per second sent to Clientify.",
        ),
        th.Property(
            "link_field",
            th.StringType,
            default="factusol_id",
            description=(
                "Name of the contact custom field lifted to the top-level `factusol_id` field."
            ),
        ),
        th.Property(
            "timeout",
            th.IntegerType(minimum=1),
            default=30,
            description="HTTP timeout in seconds for each API call.",
        ),
        th.Property(
            "max_retries",
            th.IntegerType(minimum=0),
            default=6,
            description=(
                "Retries of a transient failure (429, 5xx, timeouts) before the run stops."
            ),
        ),
    ).to_dict()

    @override
    def discover_streams(self) -> list[Stream]:
        return [ContactsStream(self)]


if __name__ == "__main__":
    TapClientify.cli()
