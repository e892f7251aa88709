"""sync_ledger: the values each linked FactuSOL client / Clientify contact pair last agreed on,
in SQLite or PostgreSQL (one SQLAlchemy URL)."""

from .ledger import DEFAULT_LEDGER, LedgerEntry, SyncLedger, ledger_url, open_ledger
from .lock import HELD, JobLock, JobLockHeld, job_lock

__all__ = [
    "DEFAULT_LEDGER",
    "HELD",
    "JobLock",
    "JobLockHeld",
    "LedgerEntry",
    "SyncLedger",
    "job_lock",
    "ledger_url",
    "open_ledger",
]
