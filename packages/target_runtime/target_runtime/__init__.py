"""The shared runtime of the fcsync Singer targets (see README.md).

Each target is a ``SyncRun`` subclass (its names and four hooks: ``prepare``, ``plan_batch``,
``write``, ``expected_total``), a ``RuntimeSink`` subclass naming its stream, and a
``RuntimeTarget`` subclass with its settings schema built from ``settings``' pieces.
"""

from target_runtime import crash
from target_runtime.claims import Claims
from target_runtime.dates import factusol_time
from target_runtime.errors import TargetStop
from target_runtime.lines import RecordLines
from target_runtime.notes import note_conflicts
from target_runtime.plan import Plan
from target_runtime.run import SyncRun
from target_runtime.settings import (
    DEFAULT_REGION,
    MATCH_KEYS,
    POLICIES,
    RunSettings,
    api_url,
    clientify_api_key,
    factusol_credentials,
    output_files,
    shared,
)
from target_runtime.sink import RuntimeSink
from target_runtime.target import RuntimeTarget

__all__ = [
    "DEFAULT_REGION",
    "MATCH_KEYS",
    "POLICIES",
    "Claims",
    "Plan",
    "RecordLines",
    "RunSettings",
    "RuntimeSink",
    "RuntimeTarget",
    "SyncRun",
    "TargetStop",
    "api_url",
    "clientify_api_key",
    "crash",
    "factusol_credentials",
    "factusol_time",
    "note_conflicts",
    "output_files",
    "shared",
]
