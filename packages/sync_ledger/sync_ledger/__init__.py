"""sync_ledger: the values each linked FactuSOL client / Clientify contact pair last agreed on,
in SQLite or PostgreSQL (one SQLAlchemy URL), each customer's history with the sync, and the
lock that keeps two runs of one job apart."""

from .history import MARK_KINDS, REASONS, CustomerHistory, HistoryEvent, Mark
from .ledger import DEFAULT_LEDGER, LedgerEntry, SyncLedger, ledger_url, open_ledger
from .lock import HELD, JobLock, JobLockHeld, job_lock

__all__ = [
    "DEFAULT_LEDGER",
    "HELD",
    "MARK_KINDS",
    "REASONS",
    "CustomerHistory",
    "HistoryEvent",
    "JobLock",
    "JobLockHeld",
    "LedgerEntry",
    "Mark",
    "SyncLedger",
    "job_lock",
    "ledger_url",
    "open_ledger",
]
