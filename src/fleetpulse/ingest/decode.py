"""Decode the body of ``POST /v1/telemetry`` into validated records and rejects.

Accepted bodies:

- ``application/json``: one record object, or an array of record objects.
- ``application/x-ndjson`` or ``application/jsonl``: one record object per line. Blank
  lines are skipped, and a line that is not JSON rejects only that record.

A ``charset`` parameter other than UTF-8 is rejected. The fast path decodes the whole
body against ``RecordIn`` in one msgspec call. Only when that fails are the records
decoded one at a time, to find which of them are bad and why. Both paths return the
same records and rejects.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Literal

import msgspec

from fleetpulse.errors import FleetpulseError
from fleetpulse.model.record import RecordIn
from fleetpulse.model.validate import Reject, ValidatedBatch, reject_from_error, validate_decoded
from fleetpulse.model.vocabulary import (
    INVALID_JSON,
    INVALID_TYPE,
    SOURCE_HTTP,
    TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
)

if TYPE_CHECKING:
    from fleetpulse.config import Settings

log = logging.getLogger(__name__)

BodyFormat = Literal["json", "ndjson"]

JSON_MEDIA_TYPES: Final = frozenset({"application/json"})
NDJSON_MEDIA_TYPES: Final = frozenset({"application/x-ndjson", "application/jsonl"})
_ACCEPTED_TYPES_TEXT: Final = (
    "application/json (one record or an array of records) or application/x-ndjson "
    "(one record per line)"
)
_UTF8_NAMES: Final = frozenset({"utf-8", "utf8"})
# Accepted Content-Type values cached, because clients send a handful of spellings.
_CONTENT_TYPES_CACHED: Final = 64

# Decoders are built once: msgspec compiles the schema when a Decoder is created.
_RECORD_LIST_DECODER: Final = msgspec.json.Decoder(list[RecordIn])
_RECORD_DECODER: Final = msgspec.json.Decoder(RecordIn)
_RAW_LIST_DECODER: Final = msgspec.json.Decoder(list[msgspec.Raw])
_RAW_DECODER: Final = msgspec.json.Decoder(msgspec.Raw)

_LEADING_WHITESPACE: Final = re.compile(rb"[ \t\r\n]*")
_BYTE_OFFSET: Final = re.compile(r"\(byte (\d+)\)")
# Bytes shown on each side of the position where a JSON body stopped parsing.
_SNIPPET_BYTES: Final = 20
_NON_FINITE_LITERALS: Final = (b"NaN", b"Infinity", b"-Infinity", b"nan", b"inf", b"-inf")


class BodyError(FleetpulseError):
    """A request body that cannot be read as records at all, so the whole request fails.

    ``reason`` is a code from ``fleetpulse.model.vocabulary``: ``invalid_json``,
    ``invalid_type``, ``too_large`` or ``unsupported_media_type``. The message states what
    is wrong and what to send instead.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@functools.lru_cache(maxsize=_CONTENT_TYPES_CACHED)
def body_format(content_type: str | None) -> BodyFormat:
    """Return the body format that a Content-Type header announces.

    Raises BodyError with reason ``unsupported_media_type`` for a missing header, an
    unknown media type, or a charset other than UTF-8. Results are cached, errors not.
    """
    if not content_type:
        raise BodyError(
            UNSUPPORTED_MEDIA_TYPE,
            "the request has no Content-Type header; send Content-Type: application/json "
            "(or application/x-ndjson for one record per line)",
        )

    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type in JSON_MEDIA_TYPES:
        body_kind: BodyFormat = "json"
    elif media_type in NDJSON_MEDIA_TYPES:
        body_kind = "ndjson"
    else:
        raise BodyError(
            UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type {media_type!r} is not supported; send {_ACCEPTED_TYPES_TEXT}",
        )

    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in _UTF8_NAMES:
            raise BodyError(
                UNSUPPORTED_MEDIA_TYPE,
                f"charset {charset!r} is not supported; encode the body as UTF-8",
            )
    return body_kind


def decode_body(
    body: bytes,
    content_type: str | None,
    received_at_ms: int,
    settings: Settings,
    source: str = SOURCE_HTTP,
) -> ValidatedBatch:
    """Decode and validate a request body, so that every record is accepted or rejected.

    ``received_at_ms`` is the time of receipt in epoch ms, shared by every record of the
    request. Rejects are ordered by index and carry the record's received bytes.
    Raises BodyError when the body as a whole is unusable: wrong content type, over
    ``ingest.max_body_bytes``, more than ``ingest.max_batch_records`` records, not JSON,
    or JSON that is not an object or an array.
    """
    body_kind = body_format(content_type)
    max_body_bytes = settings.ingest.max_body_bytes
    if len(body) > max_body_bytes:
        raise BodyError(
            TOO_LARGE,
            f"the body is {len(body)} bytes; at most {max_body_bytes} are accepted "
            "(ingest.max_body_bytes), so split the batch",
        )

    try:
        if body_kind == "ndjson":
            return _decode_ndjson(body, received_at_ms, settings, source)
        return _decode_json(body, received_at_ms, settings, source)
    except RecursionError as exc:
        # msgspec recurses once per nesting level; a body nested thousands of levels deep
        # exhausts the stack. No record nests like that, so the whole body is rejected.
        raise BodyError(
            INVALID_JSON,
            "the body nests arrays or objects thousands of levels deep; a record is a flat "
            "object whose attributes nest at most ingest.max_attributes_depth levels",
        ) from exc


# --- application/json ------------------------------------------------------------------------


def _decode_json(
    body: bytes, received_at_ms: int, settings: Settings, source: str
) -> ValidatedBatch:
    whitespace = _LEADING_WHITESPACE.match(body)
    start = whitespace.end() if whitespace else 0
    first = body[start : start + 1]
    if not first:
        raise BodyError(
            INVALID_JSON,
            f"the request body is empty; send {_ACCEPTED_TYPES_TEXT}",
        )

    if first == b"[":
        return _decode_json_array(body, received_at_ms, settings, source)
    if first == b"{":
        return _decode_json_object(body, received_at_ms, settings, source)

    # Valid JSON of the wrong kind, such as a number or a string, is a type error.
    _check_json_syntax(body)
    raise BodyError(
        INVALID_TYPE,
        "the body is JSON but not an object or an array; send one record object or an "
        "array of record objects",
    )


def _decode_json_array(
    body: bytes, received_at_ms: int, settings: Settings, source: str
) -> ValidatedBatch:
    try:
        records = _RECORD_LIST_DECODER.decode(body)
    except msgspec.DecodeError:
        return _decode_json_elements(body, received_at_ms, settings, source)

    _check_record_count(len(records), settings)
    batch = validate_decoded(records, received_at_ms, settings, source)
    if batch.rejects:
        elements = _RAW_LIST_DECODER.decode(body)
        _attach_raw(batch.rejects, elements, settings)
    return batch


def _decode_json_elements(
    body: bytes, received_at_ms: int, settings: Settings, source: str
) -> ValidatedBatch:
    try:
        elements = _RAW_LIST_DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise BodyError(INVALID_JSON, _malformed_message(body, exc)) from exc

    _check_record_count(len(elements), settings)
    return _validate_each(elements, None, received_at_ms, settings, source)


def _decode_json_object(
    body: bytes, received_at_ms: int, settings: Settings, source: str
) -> ValidatedBatch:
    try:
        record = _RECORD_DECODER.decode(body)
    except msgspec.DecodeError:
        # msgspec stops at the first schema error, so the syntax of the rest is unchecked.
        _check_json_syntax(body)
        return _validate_each([body], None, received_at_ms, settings, source)

    batch = validate_decoded([record], received_at_ms, settings, source)
    _attach_raw(batch.rejects, [body], settings)
    return batch


def _check_json_syntax(body: bytes) -> None:
    try:
        _RAW_DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise BodyError(INVALID_JSON, _malformed_message(body, exc)) from exc


# --- application/x-ndjson --------------------------------------------------------------------


def _decode_ndjson(
    body: bytes, received_at_ms: int, settings: Settings, source: str
) -> ValidatedBatch:
    try:
        records: list[RecordIn] | None = _RECORD_DECODER.decode_lines(body)
    except msgspec.DecodeError:
        records = None

    # decode_lines splits on any whitespace, not only on newlines, so its result matches
    # the lines only when there is one value per line. Blank lines also fail this check
    # and take the line-by-line path, which skips them.
    # NOTE: a body where one line contains two objects and another object spans two lines
    # keeps the count, so it is accepted here although the line-by-line path would reject
    # those three lines.
    if records is not None and len(records) == _line_count(body):
        _check_record_count(len(records), settings)
        batch = validate_decoded(records, received_at_ms, settings, source)
        if batch.rejects:
            lines = body.split(b"\n")
            _attach_raw(batch.rejects, [line.strip() for line in lines], settings)
            _prefix_line_numbers(batch.rejects, list(range(1, len(lines) + 1)))
        return batch

    numbered = [
        (number, line.strip())
        for number, line in enumerate(body.split(b"\n"), start=1)
        if line.strip()
    ]
    _check_record_count(len(numbered), settings)
    line_numbers = [number for number, _ in numbered]
    return _validate_each(
        [line for _, line in numbered], line_numbers, received_at_ms, settings, source
    )


def _line_count(body: bytes) -> int:
    if not body:
        return 0
    return body.count(b"\n") + (0 if body.endswith(b"\n") else 1)


# --- one record at a time --------------------------------------------------------------------


def _validate_each(
    elements: Sequence[bytes | msgspec.Raw],
    line_numbers: list[int] | None,
    received_at_ms: int,
    settings: Settings,
    source: str,
) -> ValidatedBatch:
    """Decode and validate each element alone. ``line_numbers`` is set for NDJSON."""
    decoded: list[RecordIn] = []
    indices: list[int] = []
    rejects: list[Reject] = []
    for index, element in enumerate(elements):
        try:
            decoded.append(_RECORD_DECODER.decode(element))
        except msgspec.ValidationError as exc:
            rejects.append(reject_from_error(exc, element, index, settings))
            continue
        except msgspec.DecodeError as exc:
            # An NDJSON line, or an element of a JSON array whose structure was checked
            # as a whole but whose strings are not valid UTF-8.
            subject = "the line" if line_numbers is not None else "the record"
            detail = _malformed_message(bytes(element), exc, subject=subject)
            raw = bytes(memoryview(element)[: settings.ingest.dead_letter_raw_bytes])
            rejects.append(Reject(index, INVALID_JSON, detail, raw))
            continue
        indices.append(index)

    batch = validate_decoded(decoded, received_at_ms, settings, source, indices)
    _attach_raw(batch.rejects, elements, settings)
    rejects.extend(batch.rejects)
    rejects.sort(key=lambda reject: reject.index)
    if line_numbers is not None:
        _prefix_line_numbers(rejects, line_numbers)
    log.debug(
        "decoded %d records one at a time: accepted=%d rejected=%d",
        len(elements),
        len(batch.records),
        len(rejects),
    )
    return ValidatedBatch(batch.records, rejects)


def _attach_raw(
    rejects: list[Reject], elements: Sequence[bytes | msgspec.Raw], settings: Settings
) -> None:
    """Replace each reject's re-encoded record with the bytes the client sent."""
    limit = settings.ingest.dead_letter_raw_bytes
    for reject in rejects:
        reject.raw = bytes(memoryview(elements[reject.index])[:limit])


def _prefix_line_numbers(rejects: list[Reject], line_numbers: list[int]) -> None:
    for reject in rejects:
        reject.detail = f"line {line_numbers[reject.index]}: {reject.detail}"


def _check_record_count(count: int, settings: Settings) -> None:
    max_records = settings.ingest.max_batch_records
    if count > max_records:
        raise BodyError(
            TOO_LARGE,
            f"the request has {count} records; at most {max_records} are accepted per "
            "request (ingest.max_batch_records), so split the batch",
        )


def _malformed_message(data: bytes, error: msgspec.DecodeError, subject: str = "the body") -> str:
    """Describe where JSON parsing stopped, with the bytes around that position."""
    problem = str(error).removeprefix("JSON is malformed: ")
    if problem == "Input data was truncated":
        return f"{subject} is not valid JSON: it ends before the JSON value is complete"

    message = f"{subject} is not valid JSON: {problem}"
    match = _BYTE_OFFSET.search(problem)
    if match is None:
        return message

    offset = int(match.group(1))
    snippet = data[max(0, offset - _SNIPPET_BYTES) : offset + _SNIPPET_BYTES]
    message += f", near {snippet.decode('utf-8', errors='replace')!r}"
    # msgspec points at the first byte of a bare NaN, or at the letter after a minus sign.
    before = max(0, offset - 1)
    if data[offset:].startswith(_NON_FINITE_LITERALS) or data[before:].startswith(
        _NON_FINITE_LITERALS
    ):
        message += "; NaN and Infinity are not JSON, so send null or leave the field out"
    return message
