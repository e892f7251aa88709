"""Change probe: has anything changed in FactuSOL since the bookmark of a tap state?

A scheduler polling every few minutes calls :func:`has_changes` and starts
``meltano run tap-factusol ...`` only when it answers True. It uses the tap's own detection
(``detect.py``) and record fingerprints (``records.py``) and imports no singer_sdk, so a check
costs a fraction of a CPU-second and at most three FactuSOL calls (login, the ``ejercicio``
probe when ``ejercicio`` is ``auto``, one ordered read) while the boundary day holds fewer rows
than the first read asks for.

Command line: ``python -m tap_factusol.probe CONFIG.json [STATE.json]`` exits 0 when something
changed (run the pipeline), 1 when nothing did, 2 on an error.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from typing import Any

from tap_factusol import detect
from tap_factusol.records import RecordBuilder, make_client, zone

logger = logging.getLogger(__name__)


def has_changes(config: Mapping[str, Any], state: Mapping[str, Any] | None) -> bool:
    """True when a modified run from ``state`` would emit at least one client.

    Args:
        config: The tap's settings (``codigo_fabricante``, ``codigo_cliente``, ``base_datos``,
            ``password``, and optionally ``api_url``, ``ejercicio``, ``timezone``,
            ``include_all_columns``, ``timeout``, ``max_retries``).
        state: The tap's Singer state (``{"bookmarks": {"clients": …}}``), or the object
            ``meltano state get`` prints (``{"singer_state": …}``). None or no bookmark -> True.

    True also when the ordered read cannot be trusted (the tap would fall back to its light
    scan, which the probe does not run). Raises the client's errors (credentials, network).
    """
    entry = detect.stream_state(state)
    bookmark = entry.get("replication_key_value")
    if not bookmark:
        return True
    tz = zone(config.get("timezone"))
    builder = RecordBuilder(tz, include_all=bool(config.get("include_all_columns", False)))
    known = detect.fingerprints_in(entry)
    since = detect.start_day(str(bookmark), tz)
    with make_client(config, tz) as client:
        detection = detect.find_recent(client, builder, since, known=len(known))
        logger.info("probe: %d FactuSOL call(s)", sum(client.calls.values()))
    if detection.fallback is not None:
        logger.info("probe: cannot tell cheaply (%s); reporting a change", detection.fallback)
        return True
    changed = detect.changed_rows(detection, builder, known)
    logger.info("probe: %d changed client(s) since %s", len(changed), since)
    return bool(changed)


def main(argv: list[str] | None = None) -> int:
    """``python -m tap_factusol.probe CONFIG.json [STATE.json]``: exit 0 changed, 1 not, 2 error."""
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m tap_factusol.probe CONFIG.json [STATE.json]", file=sys.stderr)
        return 2
    try:
        with open(args[0], encoding="utf-8") as handle:
            config = json.load(handle)
        state = None
        if len(args) == 2:
            with open(args[1], encoding="utf-8") as handle:
                state = json.load(handle)
        return 0 if has_changes(config, state) else 1
    except Exception as exc:  # the exit status is the interface
        print(f"probe failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
