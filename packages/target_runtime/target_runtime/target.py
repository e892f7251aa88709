"""RuntimeTarget: the Singer target both targets share (one stream, one run, one-line errors)."""

from __future__ import annotations

import sys
import threading
from typing import Any, ClassVar

from singer_sdk import Target
from singer_sdk.sinks import Sink
from typing_extensions import override

from target_runtime.errors import TargetStop
from target_runtime.memory import JobHeld
from target_runtime.run import SyncRun


class RuntimeTarget(Target):
    """A target loading one stream into one run; subclasses name ``run_class`` and the sink."""

    run_class: ClassVar[type[SyncRun]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One stream: draining it in the main thread keeps errors plain (no joblib wrapping).
        self.max_parallelism = 1
        self._run: SyncRun | None = None
        self._run_lock = threading.Lock()

    @property
    def run(self) -> SyncRun:
        """The run shared by every sink (a schema change makes a new sink), built at the first
        SCHEMA without any API call; it checks the accounts at its first record."""
        with self._run_lock:
            if self._run is None:
                self._run = self.run_class(dict(self.config), self.logger)
            return self._run

    @override
    def _write_state_message(self, state: dict[str, Any]) -> None:
        # A batch's last writes go on while the next batch is read (SyncRun.process_batch):
        # a STATE vouches for every record before it, so they end first (a failed one stops
        # the run here, and no STATE is written).
        with self._run_lock:
            run = self._run
        if run is not None:
            run.settle()
        super()._write_state_message(state)

    @override
    def get_sink_class(self, stream_name: str) -> type[Sink]:
        stream = self.run_class.stream
        if stream_name != stream:
            raise TargetStop(
                f"{self.name} loads only the '{stream}' stream; got stream '{stream_name}'. "
                f"Deselect it, or rename it with a stream map (stream_maps: "
                f'{{"{stream_name}": {{"__alias__": "{stream}"}}}}) if it carries the same fields.'
            )
        assert self.default_sink_class is not None
        return self.default_sink_class

    @classmethod
    @override
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        # A run-stopping problem is one clear line and exit 1, not a traceback.
        try:
            super().invoke(*args, **kwargs)
        except TargetStop as exc:
            cls.logger.error("%s", exc)
            sys.exit(1)
        except JobHeld as exc:
            # Another run of this job is writing: read the tap's output to its end (so the tap
            # finishes normally), write nothing, emit no state, and say so in one line.
            for _line in sys.stdin.buffer:
                pass
            cls.logger.warning("%s: this run exits without writing", exc)
            sys.exit(0)
