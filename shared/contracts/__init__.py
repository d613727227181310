"""The public event contract: the CloudEvents envelope and every event the platform publishes."""

from shared.contracts.envelope import Envelope, EnvelopeError, parse_envelope
from shared.contracts.events import EVENT_TYPES, STREAMS, Event, event_class

__all__ = ["EVENT_TYPES", "STREAMS", "Envelope", "EnvelopeError", "Event", "event_class", "parse_envelope"]
