"""Errors as problem documents a person can act on (no I/O: a small app with the shared handlers)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from shared.problems import install_problem_handlers


class Unit(BaseModel):
    name: str
    members: int


def app() -> FastAPI:
    application = FastAPI()
    install_problem_handlers(application)

    @application.post("/units")
    async def create(unit: Unit) -> Unit:
        return unit

    return application


async def post(content: bytes, content_type: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post("/units", content=content, headers={"content-type": content_type})


async def test_a_json_body_sent_as_plain_text_is_told_to_send_json() -> None:
    r = await post(b'{"name": "\xe7\x9f\xb3", "members": 3}', "text/plain")
    assert r.status_code == 415 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "json_expected" and "application/json" in r.json()["detail"]
    assert "text/plain" in r.json()["detail"]


async def test_json_with_a_wrong_field_still_names_the_field() -> None:
    r = await post(b'{"name": "x", "members": "many"}', "application/json")
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["members"]
    ok = await post(b'{"name": "x", "members": 3}', "application/json; charset=utf-8")
    assert ok.status_code == 200
