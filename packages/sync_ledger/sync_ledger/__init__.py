"""sync_ledger: the values each linked FactuSOL client / Clientify contact pair last agreed on,
in SQLite or PostgreSQL (one SQLAlchemy URL)."""

from .ledger import DEFAULT_LEDGER, LedgerEntry, SyncLedger, ledger_url, open_ledger

__all__ = ["DEFAULT_LEDGER", "LedgerEntry", "SyncLedger", "ledger_url", "open_ledger"]
