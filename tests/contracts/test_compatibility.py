"""The event contract is an API: generated docs stay current, and released event types never break consumers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.contracts.docs import RELEASED, event_schema, stale
from shared.contracts.events import EVENT_TYPES

IGNORED = {"description", "title", "default", "examples"}


def released() -> list[Path]:
    return sorted(RELEASED.glob("*.schema.json"))


def normalized(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: normalized(v) for k, v in schema.items() if k not in IGNORED}
    if isinstance(schema, list):
        return [normalized(v) for v in schema]
    return schema


def breaking_changes(old: dict[str, Any], new: dict[str, Any], where: str = "") -> list[str]:
    """What a consumer built against ``old`` would trip over in ``new``."""
    problems = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{where}{name}: removed or renamed")
        elif normalized(old_prop) != normalized(new_props[name]):
            problems.append(f"{where}{name}: type changed")
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{where}{name}: became required")
    for def_name, old_def in old.get("$defs", {}).items():
        new_def = new.get("$defs", {}).get(def_name)
        if new_def is None:
            problems.append(f"$defs.{def_name}: removed")
        else:
            problems.extend(breaking_changes(old_def, new_def, f"{def_name}."))
    return problems


def test_generated_contract_docs_are_up_to_date() -> None:
    assert stale() == [], "docs/ is stale: run `make docs` and commit the result"


def test_every_event_type_is_released() -> None:
    names = {p.name.removesuffix(".schema.json") for p in released()}
    assert set(EVENT_TYPES) <= names, "new event types: run `python -m shared.contracts.docs --release`"


@pytest.mark.parametrize("path", released(), ids=lambda p: p.name.removesuffix(".schema.json"))
def test_released_event_types_stay_compatible(path: Path) -> None:
    event_type = path.name.removesuffix(".schema.json")
    assert event_type in EVENT_TYPES, f"{event_type} was released and must keep being published"
    old = json.loads(path.read_text(encoding="utf-8"))
    new = event_schema(event_type, EVENT_TYPES[event_type])
    assert breaking_changes(old, new) == []


def test_the_compatibility_check_catches_each_kind_of_break() -> None:
    old = {
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}, "c": {"type": "string"}},
        "required": ["a"],
    }
    renamed = {"properties": {"a": {"type": "string"}, "b2": {"type": "integer"}, "c": {"type": "string"}}}
    retyped = {"properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "string"}}}
    required = {**old, "required": ["a", "c"]}
    extended = {"properties": {**old["properties"], "d": {"type": "string"}}, "required": ["a"]}
    assert breaking_changes(old, renamed) == ["b: removed or renamed"]
    assert breaking_changes(old, retyped) == ["a: type changed"]
    assert breaking_changes(old, required) == ["c: became required"]
    assert breaking_changes(old, extended) == [], "a new optional field is compatible"


def test_no_event_carries_an_id_card_number_or_phone() -> None:
    forbidden = ("id_number", "id_card", "idcard", "mobile", "phone")
    for event_type, cls in EVENT_TYPES.items():
        text = json.dumps(event_schema(event_type, cls)).lower()
        assert not any(f in text for f in forbidden), event_type
