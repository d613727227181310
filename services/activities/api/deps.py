"""What the routes are given: the storage port, the sign-up batches of this process, the check-in secret, the
callers allowed, and the path parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from services.activities.usecases.batches import SignUpBatches
from services.activities.usecases.ports import Storage
from shared.identity import require_roles

ADMINS = require_roles("province_admin", "unit_admin")

VolunteerId = Annotated[str, Path(pattern=r"^[^.$\s]{1,64}$", description="志愿者 ID")]
ActivityId = Annotated[str, Path(min_length=1, max_length=64, description="活动 ID")]


def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.store
    return storage


StorageDep = Annotated[Storage, Depends(get_storage)]


def get_batches(request: Request) -> SignUpBatches:
    batches: SignUpBatches = request.app.state.batches
    return batches


BatchesDep = Annotated[SignUpBatches, Depends(get_batches)]


def get_secret(request: Request) -> str:
    secret: str = request.app.state.checkin_secret
    return secret


SecretDep = Annotated[str, Depends(get_secret)]
