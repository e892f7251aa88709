"""tap_clientify."""
