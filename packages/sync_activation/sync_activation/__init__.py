"""Check both accounts once before the first sync: ``fcsync-activate`` / ``make activate``."""

from sync_activation.checks import FAIL, OK, SKIP, WARN, Line, Report, run_checks
from sync_activation.cli import main
from sync_activation.settings import (
    Settings,
    SettingsError,
    settings_from_env,
    settings_from_meltano,
)

__all__ = [
    "FAIL",
    "OK",
    "SKIP",
    "WARN",
    "Line",
    "Report",
    "Settings",
    "SettingsError",
    "main",
    "run_checks",
    "settings_from_env",
    "settings_from_meltano",
]
