"""sync_ledger: the values each linked FactuSOL client / Clientify contact pair last agreed on,
in SQLite or PostgreSQL (one SQLAlchemy URL), and each customer's history with the sync."""

from .history import MARK_KINDS, REASONS, CustomerHistory, HistoryEvent, Mark
from .ledger import DEFAULT_LEDGER, LedgerEntry, SyncLedger, ledger_url, open_ledger

__all__ = [
    "DEFAULT_LEDGER",
    "MARK_KINDS",
    "REASONS",
    "CustomerHistory",
    "HistoryEvent",
    "LedgerEntry",
    "Mark",
    "SyncLedger",
    "ledger_url",
    "open_ledger",
]
