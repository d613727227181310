"""Generates the published contract into ``docs/``: one JSON Schema per event type and an AsyncAPI 3.0 document.

``python -m shared.contracts.docs`` writes them; ``--check`` fails when they are stale; ``--release`` adds event
types that are not yet in the released baseline (``docs/events/released/``), never rewriting a released one —
compatibility of released types is what tests/contracts checks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shared.contracts.envelope import Envelope
from shared.contracts.events import EVENT_TYPES, STREAMS, Event

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SCHEMAS = DOCS / "events"
RELEASED = SCHEMAS / "released"
ASYNCAPI = DOCS / "asyncapi.json"


def event_schema(event_type: str, cls: type[Event]) -> dict[str, Any]:
    schema = Envelope[cls].model_json_schema(mode="serialization")  # type: ignore[valid-type]
    schema["title"] = f"{cls.__name__} ({event_type})"
    schema["$id"] = f"https://stvs.hebei.example/events/{event_type}.schema.json"
    schema["description"] = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
    schema["properties"]["type"] = {"const": event_type, "type": "string"}
    return schema


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for stream in STREAMS:
        refs = {}
        for event_type, cls in sorted(EVENT_TYPES.items()):
            if cls.stream != stream:
                continue
            name = cls.__name__
            messages[name] = {
                "name": name,
                "title": event_type,
                "summary": (cls.__doc__ or name).strip().splitlines()[0],
                "contentType": "application/cloudevents+json",
                "payload": {"$ref": f"events/{event_type}.schema.json"},
                "headers": {
                    "type": "object",
                    "properties": {"traceparent": {"type": "string", "description": "W3C trace context"}},
                },
                "bindings": {"kafka": {"key": {"type": "string", "description": "Aggregate id (= subject)"}}},
            }
            refs[name] = {"$ref": f"#/components/messages/{name}"}
        channel = stream.replace(".", "_")
        channels[channel] = {
            "address": stream,
            "description": f"Kafka topic {stream} (prefixed by STVS_NAMESPACE when set); DLQ: {stream}.dlq",
            "messages": refs,
        }
        operations[f"publish_{channel}"] = {"action": "send", "channel": {"$ref": f"#/channels/{channel}"}}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "河北省科技志愿服务平台 events",
            "version": "1.0.0",
            "description": "CloudEvents 1.0 (structured JSON) published by the platform's services. "
            "Consumers de-duplicate on the envelope id; events of one aggregate share a key and stay in order.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def rendered() -> dict[Path, str]:
    files = {SCHEMAS / f"{t}.schema.json": _dump(event_schema(t, cls)) for t, cls in sorted(EVENT_TYPES.items())}
    files[ASYNCAPI] = _dump(asyncapi())
    return files


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def stale() -> list[Path]:
    return [p for p, text in rendered().items() if not p.exists() or p.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when docs/ is not up to date")
    parser.add_argument("--release", action="store_true", help="add new event types to the released baseline")
    args = parser.parse_args(argv)
    if args.check:
        out = stale()
        for p in out:
            print(f"stale: {p.relative_to(ROOT)} (run make docs)")
        return 1 if out else 0
    for path, text in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if args.release:
        RELEASED.mkdir(parents=True, exist_ok=True)
        for t, cls in sorted(EVENT_TYPES.items()):
            target = RELEASED / f"{t}.schema.json"
            if not target.exists():
                target.write_text(_dump(event_schema(t, cls)), encoding="utf-8")
                print(f"released {t}")
    print(f"wrote {len(rendered())} files under docs/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
