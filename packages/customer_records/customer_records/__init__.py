"""customer_records: what the sync keeps about a person, and for how long.

Each customer's history (``fcsync-history``), retention of run files (``prune_run_files``), the
right to be forgotten (``fcsync-forget``) and bringing a customer back (``fcsync-relink``).
"""

from .forget import ForgetResult, forget_person
from .history import history_source
from .retention import DEFAULT_RETENTION_DAYS, PruneResult, prune_files, prune_run_files

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "ForgetResult",
    "PruneResult",
    "forget_person",
    "history_source",
    "prune_files",
    "prune_run_files",
]
