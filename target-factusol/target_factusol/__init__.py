"""target_factusol."""
