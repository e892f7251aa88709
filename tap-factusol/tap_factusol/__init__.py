"""tap_factusol."""
