"""sync_ledger: the values each linked FactuSOL client / Clientify contact pair last agreed on,
in SQLite or PostgreSQL (one SQLAlchemy URL)."""

from .ledger import LedgerEntry, SyncLedger, ledger_url

__all__ = ["LedgerEntry", "SyncLedger", "ledger_url"]
