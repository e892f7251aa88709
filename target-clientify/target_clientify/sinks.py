"""ClientsSink: batches of FactuSOL `clients` records (deduplicated by code) for the run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from singer_sdk import Target
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum
from singer_sdk.sinks import BatchSink
from typing_extensions import override

from target_clientify.records import BAD_DATES, MISSING_KEYS, TargetClientifyError
from target_clientify.run import ClientifyRun


class ClientsSink(BatchSink):
    """Batches `clients` records (deduplicated by code, the last one wins) for ClientifyRun."""

    MAX_SIZE_DEFAULT = 500
    # A record the schema rejects reaches process_record and is handled by the mapping (one
    # bad record never stops the run); see _validate_and_parse.
    fail_on_record_validation_exception = False

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self._owner = target  # the SDK keeps no reference; the run lives on the target

    @override
    def setup(self) -> None:
        super().setup()
        if "code" not in self.schema.get("properties", {}):
            raise TargetClientifyError(
                f"stream '{self.stream_name}' has no `code` property: target-clientify reads "
                "the `clients` stream of tap-factusol (see its README for the contract)"
            )
        self.run: ClientifyRun = self._owner.run  # type: ignore[attr-defined]

    @override
    def _validate_and_parse(self, record: dict[str, Any]) -> dict[str, Any]:
        # The SDK's version logs a schema failure with the whole record (personal data) and
        # stops the run on a date-time it cannot parse ('0000-00-00', '2024-02-30T…'). Here a
        # schema failure goes on to the mapping as before (rejected there, or synced without
        # the bad field), logged with the client code and the failing rule only; a date-time
        # that does not parse keeps its raw value and is noted for ClientifyRun, which warns
        # (client code, field) and reads it as unknown.
        if self._validator is not None:
            try:
                self._validator.validate(record)
            except InvalidRecord as exc:
                if self.fail_on_record_validation_exception:
                    raise
                cause = exc.__cause__
                self.logger.warning(
                    "client %s: record does not match the %s schema (%s at %s)",
                    record.get("code"),
                    self.stream_name,
                    getattr(cause, "validator", "?"),
                    getattr(cause, "json_path", "$"),
                )
        parsed = dict(record)
        try:
            self._parse_timestamps_in_record(parsed, self.schema, DatetimeErrorTreatmentEnum.ERROR)
        except ValueError:
            bad = []
            for key, value in record.items():  # one field at a time, to find the bad ones
                one = {key: value}
                try:
                    self._parse_timestamps_in_record(
                        one, self.schema, DatetimeErrorTreatmentEnum.ERROR
                    )
                except ValueError:
                    bad.append(key)
                    continue
                record[key] = one[key]
            record[BAD_DATES] = bad
            return record
        record.update(parsed)
        return record

    @override
    def _after_process_record(self, context: dict[str, Any]) -> None:
        # The SDK logs the whole batch context (personal data) at DEBUG here; log nothing.
        return

    @override
    def preprocess_record(self, record: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        # The SDK checks the key properties right after this hook and stops the whole run on a
        # record without one (MissingKeyPropertiesError). Let it through, marked and with the
        # key set to None, so ClientifyRun rejects it with a reason and the run goes on.
        missing = [key for key in self.key_properties if key not in record]
        if missing:
            record[MISSING_KEYS] = missing
            record.update(dict.fromkeys(missing))
        return record

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        by_code: dict[Any, dict[str, Any]] = context.setdefault("by_code", {})
        code = record.get("code")
        key = code if isinstance(code, int) else ("?", len(by_code))
        if key in by_code:
            self.tally_duplicate_merged()
            del by_code[key]  # re-insert: the last version keeps the later position
        by_code[key] = record

    @override
    def process_batch(self, context: dict[str, Any]) -> None:
        records = list(context.get("by_code", {}).values())
        if records:
            self.run.process_batch(
                records,
                stream=self.stream_name,
                schema=self.schema,
                key_properties=self.key_properties,
            )

    @override
    def clean_up(self) -> None:
        try:
            self.run.finish()
        finally:
            super().clean_up()
