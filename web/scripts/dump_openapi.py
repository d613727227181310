"""Writes the gateway's merged OpenAPI document (what ``GET /openapi.json`` answers) to ``web/openapi.json``.

The gateway builds that document at run time from its own routes and the services' documents fetched over HTTP.
Here the same merge (``OpenApiDocs.document``) runs in-process on every service's FastAPI app: building an app
connects to nothing (Kafka and MongoDB are reached in the lifespan only), so no platform needs to run.

    uv run python web/scripts/dump_openapi.py            # writes web/openapi.json
    uv run python web/scripts/dump_openapi.py --check    # exit 1 when web/openapi.json is stale
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

TARGET = REPO / "web" / "openapi.json"


async def merged_document() -> dict[str, object]:
    from services.activities.app import create_app as activities
    from services.gateway.app import create_app as gateway
    from services.notifier.app import create_app as notifier
    from services.registry.app import create_app as registry
    from services.reporting.app import create_app as reporting

    app = gateway()
    docs = app.state.gateway.docs
    docs.services = {
        "registry": registry().openapi(),
        "activities": activities().openapi(),
        "reporting": reporting().openapi(),
        "notifier": notifier().openapi(),
    }
    document: dict[str, object] = await docs.document(app.openapi())
    return document


def main() -> int:
    logging.disable(logging.WARNING)
    text = json.dumps(asyncio.run(merged_document()), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if "--check" in sys.argv[1:]:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(REPO)} is stale: run `uv run python web/scripts/dump_openapi.py`")
            return 1
        print(f"{TARGET.relative_to(REPO)} is current")
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
