"""The envelope round-trips and refuses every kind of message that is not a platform event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.contracts.envelope import Envelope, EnvelopeError, parse_envelope
from shared.contracts.events import ActivityCompleted, Participation


def completed(hours: list[float]) -> Envelope[ActivityCompleted]:
    now = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
    data = ActivityCompleted(
        activity_id="a1",
        unit_id="u1",
        title="科普进社区",
        line_of_work="community_school",
        themes=["women_youth"],
        starts_at=now,
        ends_at=now,
        completed_at=now,
        people_served=120,
        participants=[Participation(volunteer_id=f"v{i}", display_name="李四", hours=h) for i, h in enumerate(hours)],
        total_hours=sum(hours),
    )
    return Envelope.new(data, source="/stvs/activities", subject="a1")


@given(st.lists(st.floats(min_value=0, max_value=24, allow_nan=False), max_size=20))
def test_an_envelope_round_trips_through_json(hours: list[float]) -> None:
    env = completed(hours)
    parsed = parse_envelope(env.to_json())
    assert parsed == env
    assert isinstance(parsed.data, ActivityCompleted)


def test_the_envelope_is_cloudevents_structured_json() -> None:
    doc = json.loads(completed([2.0]).to_json())
    assert doc["specversion"] == "1.0"
    assert doc["type"] == "stvs.activity.completed.v1"
    assert doc["source"] == "/stvs/activities"
    assert doc["subject"] == "a1"
    assert doc["datacontenttype"] == "application/json"
    assert doc["time"].endswith("Z")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00\x01binary", "not_json"),
        (b"[1, 2]", "bad_envelope"),
        (b'{"specversion": "1.0"}', "bad_envelope"),
        (b"x" * 1_000_001, "too_large"),
    ],
)
def test_messages_that_are_not_events_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError) as err:
        parse_envelope(raw)
    assert err.value.reason == reason


def test_unknown_types_and_bad_data_are_told_apart() -> None:
    doc = json.loads(completed([1.0]).to_json())
    with pytest.raises(EnvelopeError, match="unknown_type"):
        parse_envelope(json.dumps({**doc, "type": "stvs.activity.exploded.v1"}).encode())
    doc["data"]["total_hours"] = -3
    with pytest.raises(EnvelopeError) as err:
        parse_envelope(json.dumps(doc).encode())
    assert err.value.reason == "bad_data"
    assert "total_hours" in err.value.detail


def test_an_envelope_read_back_from_kafka_publishes_its_whole_data_again() -> None:
    original = completed([1.5, 2.0])
    parsed = parse_envelope(original.to_json())  # typed Envelope[Event], as a consumer holds it
    assert json.loads(parsed.to_json())["data"] == json.loads(original.to_json())["data"]
