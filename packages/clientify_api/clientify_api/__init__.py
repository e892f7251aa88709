"""clientify_api."""
