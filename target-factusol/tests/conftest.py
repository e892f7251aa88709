"""Fixtures for target-factusol tests; the helpers live in target_factusol_testlib."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from target_factusol_testlib import cl_sandbox, fs_sandbox, harness

__all__ = ["cl_sandbox", "fs_sandbox", "harness"]
