"""factusol_api."""
