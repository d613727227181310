"""CloudEvents 1.0 envelope in structured JSON mode, and its strict parser.

The envelope's ``id`` is the idempotency key every consumer de-duplicates on; ``subject`` is the aggregate id
and the Kafka message key, so one aggregate's events stay on one partition, in order.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.contracts.events import Event, event_class

E = TypeVar("E", bound=Event)

MAX_EVENT_BYTES = 1_000_000


class EnvelopeError(ValueError):
    """A message that cannot be taken as a platform event; ``reason`` is one of a few stable codes."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Envelope(BaseModel, Generic[E]):
    """One event as it travels: CloudEvents attributes plus the typed ``data``."""

    model_config = ConfigDict(frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(description="UUID of this event; consumers de-duplicate on it")
    source: str = Field(pattern=r"^/stvs/[a-z]+$", description="Publishing service, e.g. /stvs/registry")
    type: str = Field(pattern=r"^stvs\.[a-z_]+\.[a-z_]+\.v[0-9]+$", description="e.g. stvs.volunteer.registered.v1")
    subject: str = Field(min_length=1, description="Id of the aggregate the event is about; the Kafka key")
    time: datetime = Field(description="When it happened (RFC 3339, UTC)")
    datacontenttype: Literal["application/json"] = "application/json"
    data: E

    @classmethod
    def new(cls, data: E, *, source: str, subject: str, time: datetime | None = None) -> Envelope[E]:
        """A fresh envelope for ``data`` with a new id."""
        return Envelope[E](
            id=str(uuid.uuid4()),
            source=source,
            type=data.event_type,
            subject=subject,
            time=time or datetime.now(UTC),
            data=data,
        )

    @property
    def stream(self) -> str:
        """The event stream (topic without namespace) this event belongs to."""
        return self.data.stream

    def to_json(self) -> bytes:
        """Structured-mode JSON bytes, as published."""
        return self.dump_json().encode()

    def dump_json(self) -> str:
        # ``data`` is serialized as the concrete event it holds: an envelope parsed as ``Envelope[Event]`` would
        # otherwise serialize only the (empty) base class.
        return self.model_dump_json(serialize_as_any=True)


def parse_envelope(raw: bytes) -> Envelope[Event]:
    """Parse and validate a message; raise :class:`EnvelopeError` with a stable reason when it is not ours.

    Reasons: ``too_large``, ``not_json``, ``bad_envelope``, ``unknown_type``, ``bad_data``.
    """
    if len(raw) > MAX_EVENT_BYTES:
        raise EnvelopeError("too_large", f"{len(raw)} bytes, limit {MAX_EVENT_BYTES}")
    try:
        doc: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError("not_json", str(exc)) from exc
    if not isinstance(doc, dict):
        raise EnvelopeError("bad_envelope", "not a JSON object")
    missing = [k for k in ("specversion", "id", "source", "type", "subject", "time", "data") if k not in doc]
    if missing:
        raise EnvelopeError("bad_envelope", f"missing attributes {missing}")
    if doc["specversion"] != "1.0":
        raise EnvelopeError("bad_envelope", f"specversion {doc['specversion']!r} is not 1.0")
    cls = event_class(str(doc["type"]))
    if cls is None:
        raise EnvelopeError("unknown_type", str(doc["type"]))
    try:
        data = cls.model_validate(doc["data"])
    except ValidationError as exc:
        raise EnvelopeError("bad_data", _short(exc)) from exc
    try:
        return Envelope[Event].model_validate({**doc, "data": data})
    except ValidationError as exc:
        raise EnvelopeError("bad_envelope", _short(exc)) from exc


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
