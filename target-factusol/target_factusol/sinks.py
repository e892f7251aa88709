"""ContactsSink: batches of Clientify contacts handed to the run's sync logic."""

from __future__ import annotations

from time import monotonic
from typing import TYPE_CHECKING, Any

from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import BatchSink
from typing_extensions import override

from target_factusol.records import INVALID_KEY, MISSING_KEYS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from singer_sdk import Target

    from target_factusol.run import SyncRun


class ContactsSink(BatchSink):
    """Upserts the `contacts` stream (tap-clientify) into FactuSOL F_CLI.

    Batches let the target read every existing row a batch needs in one call (`CODCLI IN (…)`)
    instead of one read per record; the writes themselves are one call per changed record.
    """

    MAX_SIZE_DEFAULT = 500

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self._owner = target

    @property
    def run(self) -> SyncRun:
        """The run shared by every sink of this target."""
        return self._owner.sync_run  # type: ignore[attr-defined,no-any-return]

    @override
    def setup(self) -> None:
        super().setup()
        # Connect and check credentials when the stream's SCHEMA arrives: before any record.
        self.run.open_sinks += 1

    @override
    def _validate_and_parse(self, record: dict[str, Any]) -> dict[str, Any]:
        # One record that breaks the schema (or has an unparseable date-time) must not stop
        # the run: mark it so the batch rejects it with a reason. The SDK's own version raises,
        # or logs the whole record; there is no public hook for this.
        problem = None
        if self._validator is not None:
            try:
                self._validator.validate(record)
            except InvalidRecord as exc:
                # jsonschema's message quotes the bad value: keep only the rule and the path
                cause = exc.__cause__
                problem = (
                    "record does not match the contacts schema "
                    f"({getattr(cause, 'validator', '?')} at {getattr(cause, 'json_path', '$')})"
                )
        if problem is None:
            try:
                self._parse_timestamps_in_record(
                    record=record, schema=self.schema, treatment=self.datetime_error_treatment
                )
            except ValueError:
                problem = "record has a date-time field that cannot be parsed"
        if problem is not None:
            record[INVALID_KEY] = problem[:300]
        return record

    @override
    def _after_process_record(self, context: dict[str, Any]) -> None:
        # The SDK logs the whole batch context (personal data) at DEBUG here; log nothing.
        return

    @override
    def preprocess_record(self, record: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        # The SDK checks the key properties right after this hook and stops the whole run on a
        # record without one (MissingKeyPropertiesError). Let it through, marked and with the
        # key set to None, so the batch rejects it with a reason and the run goes on.
        missing = [key for key in self.key_properties if key not in record]
        if missing:
            record[INVALID_KEY] = (
                f"record has no {', '.join(missing)} (key property of stream '{self.stream_name}')"
            )
            record[MISSING_KEYS] = missing
            record.update(dict.fromkeys(missing))
        return record

    @override
    def start_batch(self, context: dict[str, Any]) -> None:
        context["received_at"] = monotonic()  # how fresh the batch's contacts are

    @override
    def process_batch(self, context: dict[str, Any]) -> None:
        records = context.get("records", [])
        if not records:
            return
        self.run.process_batch(
            records,
            stream=self.stream_name,
            schema=self.schema,
            key_properties=self.key_properties,
            received_at=context.get("received_at"),
        )

    @override
    def clean_up(self) -> None:
        # The last sink to close ends the run: report, summary line, reject-ratio verdict.
        # This runs before the SDK writes the final STATE, so a failed verdict emits none.
        self.run.open_sinks -= 1
        if self.run.open_sinks <= 0:
            self.run.finish()
        super().clean_up()
