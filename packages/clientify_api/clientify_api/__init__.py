"""Client for the Clientify API v1 (no singer_sdk): token auth, paging, contacts, custom fields,
retries, a shared rate limiter and client-side checks of every filter."""

from typing import TYPE_CHECKING, Any

from clientify_api._version import __version__
from clientify_api.client import DEFAULT_API_URL, MAX_PAGE_SIZE, ClientifyClient, PageInfo
from clientify_api.contacts import (
    addresses_known,
    contact_emails,
    contact_phones,
    contact_tags,
    custom_field_matches,
    custom_field_text,
    custom_field_value,
    fold_email,
    is_contact_field_definition,
    link_key,
)
from clientify_api.errors import (
    ClientifyAuthError,
    ClientifyConflictError,
    ClientifyCustomFieldError,
    ClientifyError,
    ClientifyNotFoundError,
    ClientifyRetryError,
    ClientifyValidationError,
)
from clientify_api.ratelimit import RateLimiter
from clientify_api.timeutil import format_filter_datetime, parse_api_datetime, to_utc_iso

if TYPE_CHECKING:
    from clientify_api.index import ContactIndex, IdentityKeys, is_database_url

_LAZY = {"ContactIndex", "IdentityKeys", "is_database_url"}  # they load SQLAlchemy


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from clientify_api import index

        return getattr(index, name)
    raise AttributeError(f"module 'clientify_api' has no attribute {name!r}")


__all__ = [
    "DEFAULT_API_URL",
    "MAX_PAGE_SIZE",
    "ClientifyAuthError",
    "ClientifyClient",
    "ClientifyConflictError",
    "ClientifyCustomFieldError",
    "ClientifyError",
    "ClientifyNotFoundError",
    "ClientifyRetryError",
    "ClientifyValidationError",
    "ContactIndex",
    "IdentityKeys",
    "PageInfo",
    "RateLimiter",
    "__version__",
    "addresses_known",
    "contact_emails",
    "contact_phones",
    "contact_tags",
    "custom_field_matches",
    "custom_field_text",
    "custom_field_value",
    "fold_email",
    "format_filter_datetime",
    "is_contact_field_definition",
    "is_database_url",
    "link_key",
    "parse_api_datetime",
    "to_utc_iso",
]
