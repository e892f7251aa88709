"""Package version (kept apart so client.py can read it without a circular import)."""

__version__ = "0.1.0"
