"""target_clientify."""
