"""FactuSOL cloud API emulator (api.sdelsol.com), built from shared/reference/factusol-api.md.

Shares no code with the product's API client on purpose, so it can catch a client that misreads
the API. Start it with `fcsync-sandbox factusol serve`, or build the app with `create_app`.
"""

from sandbox.factusol.app import create_app, default_switches

__all__ = ["create_app", "default_switches"]
