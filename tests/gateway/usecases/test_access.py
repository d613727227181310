"""Scope enforcement before forwarding, generic over what the services declare (shared/access.py), on an in-memory
unit tree and a table of declared operations: reads out of scope are not found, writes are forbidden, and every
refusal is marked as the gateway's."""

from __future__ import annotations

from typing import Any

import pytest

from services.gateway.domain.errors import GatewayError
from services.gateway.domain.routes import Table
from services.gateway.usecases import Access
from shared.access import PROVINCE_ONLY, access
from shared.identity import Identity
from tests.gateway.usecases.memory import MemoryTree

TREE = MemoryTree(
    {"P": [], "C1": ["P"], "K1": ["P", "C1"], "C2": ["P"]},
    {"V1": ["K1"], "V2": ["C2"]},
)
C1_ADMIN = Identity(subject="a1", role="unit_admin", unit_id="C1")
VOLUNTEER = Identity(subject="v1", role="volunteer", volunteer_id="V1")
SYSTEM = Identity(subject="s1", role="system")
PROVINCE = Identity(subject="p", role="province_admin")
SELF_AND_ADMIN = ("unit_admin", "volunteer:self")
# What the services declare, as their documents carry it (a few operations of each kind).
TABLE = Table.of({
    "registry": {"paths": {
        "/units": {"get": access("unit_admin", "system", units=["query:parent"]),
                   "post": access("unit_admin", units=["body:parent_id", "body:unit_ids"])},
        "/units/{unit_id}": {"get": access("unit_admin", "system", units=["path:unit_id"]),
                             "patch": access("unit_admin", units=["path:unit_id"])},
        "/volunteers/{volunteer_id}": {"get": access(*SELF_AND_ADMIN, volunteers=["path:volunteer_id"], personal=True)},
        "/volunteers/{volunteer_id}/units/{unit_id}": {
            "post": access(*SELF_AND_ADMIN, units=["path:unit_id"], volunteers=["path:volunteer_id"])},
        "/admin/dlq": {"get": PROVINCE_ONLY},
    }},
    "activities": {"paths": {
        "/activities": {"get": access("unit_admin", "volunteer", "system", units=["query:unit_id"])},
        "/activities/{activity_id}/signups": {
            "post": access(*SELF_AND_ADMIN, volunteers=["body:volunteer_id"]), "get": access("unit_admin")},
        "/activities/{activity_id}/signups/{volunteer_id}": {
            "delete": access(*SELF_AND_ADMIN, me=["path:volunteer_id"])},
    }},
    "reporting": {"paths": {
        "/certificates/volunteers/{volunteer_id}.pdf": {"get": access(
            *SELF_AND_ADMIN, units=["query:unit_id"], volunteers=["path:volunteer_id"], own_units=True)},
        "/stats/volunteers/{volunteer_id}": {"get": access(*SELF_AND_ADMIN, volunteers=["path:volunteer_id"])},
    }},
    "notifier": {"paths": {
        "/notifications": {"get": access(*SELF_AND_ADMIN, units=["query:unit"], me=["query:recipient=volunteer:"])},
        "/subscriptions": {"get": access("system"), "post": PROVINCE_ONLY},
    }},
})  # fmt: skip
Query = list[tuple[str, str]]


async def allow(identity: Identity, method: str, path: str, query: Query | None = None) -> None:
    await Access(TREE).authorize(identity, method, TABLE.find(method, path.split("/")), query or [])


async def refusal(identity: Identity, method: str, path: str, query: Query | None = None) -> GatewayError:
    with pytest.raises(GatewayError) as refused:
        await allow(identity, method, path, query)
    assert refused.value.headers.get("X-STVS-Denied-By") == "gateway"
    return refused.value


async def body_refusal(identity: Identity, method: str, path: str, body: Any) -> GatewayError | None:
    try:
        await Access(TREE).check_body(identity, TABLE.find(method, path.split("/")), body)
    except GatewayError as refused:
        return refused
    return None


async def test_a_unit_admin_reaches_its_subtree_only() -> None:
    await allow(C1_ADMIN, "GET", "units/K1")
    await allow(C1_ADMIN, "GET", "stats/volunteers/V1")
    await allow(C1_ADMIN, "GET", "units", [("parent", "K1")])
    assert (await refusal(C1_ADMIN, "GET", "units/C2")).status == 404, "a read reveals nothing"
    assert (await refusal(C1_ADMIN, "PATCH", "units/C2")).code == "out_of_scope"
    assert (await refusal(C1_ADMIN, "GET", "activities", [("unit_id", "P")])).status == 404, "not above it"
    assert (await refusal(C1_ADMIN, "GET", "volunteers/V2")).status == 404
    assert (await refusal(C1_ADMIN, "POST", "volunteers/V1/units/C2")).status == 403, "my volunteer, another unit"


async def test_a_unit_admin_reaches_a_volunteer_the_copy_does_not_know_and_the_service_decides() -> None:
    await allow(C1_ADMIN, "GET", "volunteers/V-NEW")


async def test_a_parameter_the_operation_does_not_declare_is_not_a_unit() -> None:
    """Only where the service says an id names a unit is it checked (``parent`` names one on /units, not here)."""
    await allow(C1_ADMIN, "GET", "activities", [("parent", "C2")])
    assert (await refusal(C1_ADMIN, "GET", "units", [("parent", "C2")])).status == 404


async def test_an_operation_a_role_is_not_declared_for() -> None:
    assert (await refusal(C1_ADMIN, "GET", "subscriptions")).status == 403
    assert (await refusal(VOLUNTEER, "GET", "subscriptions")).status == 404, "a volunteer learns nothing"
    assert (await refusal(VOLUNTEER, "GET", "activities/a1/signups")).status == 404
    for who in (C1_ADMIN, VOLUNTEER, SYSTEM):
        refused = await refusal(who, "GET", "registry/admin/dlq")
        assert (refused.status, refused.code) == (403, "forbidden_role"), "the province admin's alone"
    await allow(PROVINCE, "GET", "registry/admin/dlq")
    await allow(PROVINCE, "POST", "subscriptions")


async def test_a_unit_admins_body_may_name_only_its_units_and_volunteers() -> None:
    assert await body_refusal(C1_ADMIN, "POST", "units", b'{"parent_id": "K1", "unit_ids": ["C1"]}') is None
    assert await body_refusal(C1_ADMIN, "POST", "units", b"not json: the service answers it") is None
    for body in (b'{"parent_id": "C2"}', b'{"unit_ids": ["K1", "C2"]}'):
        refused = await body_refusal(C1_ADMIN, "POST", "units", body)
        assert refused is not None and (refused.status, refused.code) == (403, "out_of_scope")
    assert await body_refusal(C1_ADMIN, "POST", "activities/a1/signups", b'{"volunteer_id": "V1"}') is None
    refused = await body_refusal(C1_ADMIN, "POST", "activities/a1/signups", b'{"volunteer_id": "V2"}')
    assert refused is not None and refused.code == "out_of_scope"


async def test_a_system_key_reads_what_is_declared_for_it_only() -> None:
    await allow(SYSTEM, "GET", "units/K1")
    await allow(SYSTEM, "GET", "subscriptions")
    assert (await refusal(SYSTEM, "POST", "units")).code == "read_only"
    assert (await refusal(SYSTEM, "GET", "volunteers/V1")).code == "forbidden_role"
    assert (await refusal(SYSTEM, "GET", "certificates/volunteers/V1.pdf")).code == "forbidden_role"


async def test_a_volunteer_reaches_itself_only() -> None:
    await allow(VOLUNTEER, "GET", "volunteers/V1")
    await allow(VOLUNTEER, "GET", "activities", [("unit_id", "C2")])  # the public listing, any unit
    await allow(VOLUNTEER, "GET", "certificates/volunteers/V1.pdf", [("unit_id", "K1")])
    await allow(VOLUNTEER, "POST", "volunteers/V1/units/C2")  # joining any unit
    await allow(VOLUNTEER, "DELETE", "activities/a1/signups/V1")
    await allow(VOLUNTEER, "GET", "notifications", [("recipient", "volunteer:V1")])
    assert (await refusal(VOLUNTEER, "GET", "volunteers/V2")).status == 404
    assert (await refusal(VOLUNTEER, "DELETE", "activities/a1/signups/V2")).status == 403
    assert (await refusal(VOLUNTEER, "GET", "certificates/volunteers/V1.pdf", [("unit_id", "C2")])).status == 404
    for recipient in ("volunteer:V2", "unit:K1"):
        assert (await refusal(VOLUNTEER, "GET", "notifications", [("recipient", recipient)])).status == 404
    assert await body_refusal(VOLUNTEER, "POST", "activities/a1/signups", b"{}") is None
    refused = await body_refusal(VOLUNTEER, "POST", "activities/a1/signups", b'{"volunteer_id": "V2"}')
    assert refused is not None and refused.code == "not_yourself"


async def test_a_unit_admin_is_not_held_to_a_volunteer_only_a_volunteer_must_be() -> None:
    """``me``: the organiser cancels the sign-up of a volunteer from elsewhere (the service checks the activity)."""
    await allow(C1_ADMIN, "DELETE", "activities/a1/signups/V2")
