"""Clientify API v1 emulator (Flask + SQLite), built from docs/reference `clientify-api.md` only.

It shares no code with `packages/clientify_api` on purpose: a client that misreads the API should
fail here the way it would fail against the real service. Every INFERRED point of the reference is
a switch (see `switches.py`), changeable at run time through `POST /_sandbox/config`.
"""

from sandbox.clientify.app import create_app
from sandbox.clientify.switches import DEFAULT_SWITCHES

__all__ = ["DEFAULT_SWITCHES", "create_app"]
