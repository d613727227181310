"""Scope enforcement before forwarding, on an in-memory unit tree: reads out of scope are not found, writes are
forbidden, and every refusal is marked as the gateway's."""

from __future__ import annotations

import pytest

from services.gateway.domain.errors import GatewayError
from services.gateway.usecases import Access
from shared.identity import Identity
from tests.gateway.usecases.memory import MemoryTree

TREE = MemoryTree(
    {"P": [], "C1": ["P"], "K1": ["P", "C1"], "C2": ["P"]},
    {"V1": ["K1"], "V2": ["C2"]},
)
C1_ADMIN = Identity(subject="a1", role="unit_admin", unit_id="C1")
VOLUNTEER = Identity(subject="v1", role="volunteer", volunteer_id="V1")
SYSTEM = Identity(subject="s1", role="system")


async def refusal(
    identity: Identity, method: str, path: str, query: list[tuple[str, str]] | None = None
) -> GatewayError:
    with pytest.raises(GatewayError) as refused:
        await Access(TREE).authorize(identity, method, path.split("/"), query or [], dlq=False)
    assert refused.value.headers.get("X-STVS-Denied-By") == "gateway"
    return refused.value


async def test_a_unit_admin_reaches_its_subtree_only() -> None:
    access = Access(TREE)
    await access.authorize(C1_ADMIN, "GET", ["units", "K1"], [], dlq=False)
    await access.authorize(C1_ADMIN, "GET", ["stats", "volunteers", "V1"], [], dlq=False)
    assert (await refusal(C1_ADMIN, "GET", "units/C2")).status == 404, "a read reveals nothing"
    assert (await refusal(C1_ADMIN, "PATCH", "units/C2")).code == "out_of_scope"
    assert (await refusal(C1_ADMIN, "GET", "activities", [("unit_id", "P")])).status == 404, "not above it"
    assert (await refusal(C1_ADMIN, "GET", "volunteers/V2")).status == 404


async def test_a_unit_admins_body_may_name_only_its_units() -> None:
    access = Access(TREE)
    await access.check_body(C1_ADMIN, "POST", b'{"unit_id": "K1", "unit_ids": ["C1"]}')
    await access.check_body(C1_ADMIN, "POST", b"not json: the service answers it")
    with pytest.raises(GatewayError) as refused:
        await access.check_body(C1_ADMIN, "POST", b'{"parent_id": "C2"}')
    assert (refused.value.status, refused.value.code) == (403, "out_of_scope")


async def test_a_system_key_reads_organisational_data_only() -> None:
    await Access(TREE).authorize(SYSTEM, "GET", ["units", "K1"], [], dlq=False)
    assert (await refusal(SYSTEM, "POST", "units")).code == "read_only"
    assert (await refusal(SYSTEM, "GET", "volunteers/V1")).code == "forbidden_role"
    assert (await refusal(SYSTEM, "GET", "certificates/volunteers/V1.pdf")).code == "read_only"


async def test_a_volunteer_reaches_itself_only() -> None:
    access = Access(TREE)
    await access.authorize(VOLUNTEER, "GET", ["volunteers", "V1"], [], dlq=False)
    await access.authorize(VOLUNTEER, "GET", ["certificates", "volunteers", "V1.pdf"], [("unit_id", "K1")], dlq=False)
    assert (await refusal(VOLUNTEER, "GET", "volunteers/V2")).status == 404
    assert (await refusal(VOLUNTEER, "GET", "certificates/volunteers/V1.pdf", [("unit_id", "C2")])).status == 404
    with pytest.raises(GatewayError) as refused:
        await access.check_body(VOLUNTEER, "POST", b'{"volunteer_id": "V2"}')
    assert refused.value.code == "not_yourself"


async def test_dead_letters_are_for_province_admins() -> None:
    with pytest.raises(GatewayError) as refused:
        await Access(TREE).authorize(C1_ADMIN, "GET", ["registry", "admin", "dlq"], [], dlq=True)
    assert (refused.value.status, refused.value.code) == (403, "forbidden_role")
