"""Fixtures of the in-process reliability tests (helpers live in rel_harness.py)."""

from __future__ import annotations

import sys
from pathlib import Path

# importlib mode does not put this directory on sys.path; the tests share rel_harness.py
sys.path.insert(0, str(Path(__file__).parent))

from rel_harness import sandboxes

__all__ = ["sandboxes"]
