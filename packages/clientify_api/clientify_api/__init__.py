"""Client for the Clientify API v1 (no singer_sdk): token auth, paging, contacts, custom fields,
retries, a shared rate limiter and client-side checks of every filter."""

from clientify_api._version import __version__
from clientify_api.client import DEFAULT_API_URL, MAX_PAGE_SIZE, ClientifyClient, PageInfo
from clientify_api.contacts import (
    ContactIndex,
    compact_nif,
    contact_emails,
    contact_phones,
    contact_tags,
    custom_field_matches,
    custom_field_text,
    custom_field_value,
    is_contact_field_definition,
    link_key,
    normalize_email,
)
from clientify_api.errors import (
    ClientifyAuthError,
    ClientifyCustomFieldError,
    ClientifyError,
    ClientifyNotFoundError,
    ClientifyRetryError,
    ClientifyValidationError,
)
from clientify_api.ratelimit import RateLimiter
from clientify_api.timeutil import format_filter_datetime, parse_api_datetime, to_utc_iso

__all__ = [
    "DEFAULT_API_URL",
    "MAX_PAGE_SIZE",
    "ClientifyAuthError",
    "ClientifyClient",
    "ClientifyCustomFieldError",
    "ClientifyError",
    "ClientifyNotFoundError",
    "ClientifyRetryError",
    "ClientifyValidationError",
    "ContactIndex",
    "PageInfo",
    "RateLimiter",
    "__version__",
    "compact_nif",
    "contact_emails",
    "contact_phones",
    "contact_tags",
    "custom_field_matches",
    "custom_field_text",
    "custom_field_value",
    "format_filter_datetime",
    "is_contact_field_definition",
    "link_key",
    "normalize_email",
    "parse_api_datetime",
    "to_utc_iso",
]
