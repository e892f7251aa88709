"""Shared helpers of the report page tests live in sr_samples.py."""

from __future__ import annotations

import sys
from pathlib import Path

# importlib mode does not put this directory on sys.path; the tests share sr_samples.py
sys.path.insert(0, str(Path(__file__).parent))
