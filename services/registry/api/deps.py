"""What the registry's routes depend on: the roles each may be called by, the caller's scope and the use cases
(composed once in app.py and kept on the application's state)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.registry.usecases.import_jobs import ImportJobs
from services.registry.usecases.imports import Imports
from services.registry.usecases.moves import Moves
from services.registry.usecases.units import Units
from services.registry.usecases.volunteers import Volunteers
from shared.identity import require_roles

ADMINS = require_roles("province_admin", "unit_admin")
ANYONE = require_roles("province_admin", "unit_admin", "volunteer")
# The unit reads a system key may make too (shared.scope.SYSTEM_READS: the organisation, no person's record).
READERS = require_roles("province_admin", "unit_admin", "system")


def get_units(request: Request) -> Units:
    units: Units = request.app.state.units
    return units


def get_moves(request: Request) -> Moves:
    moves: Moves = request.app.state.moves
    return moves


def get_volunteers(request: Request) -> Volunteers:
    volunteers: Volunteers = request.app.state.volunteers
    return volunteers


def get_imports(request: Request) -> Imports:
    imports: Imports = request.app.state.imports
    return imports


def get_import_jobs(request: Request) -> ImportJobs:
    jobs: ImportJobs = request.app.state.import_jobs
    return jobs


UnitsDep = Annotated[Units, Depends(get_units)]
MovesDep = Annotated[Moves, Depends(get_moves)]
VolunteersDep = Annotated[Volunteers, Depends(get_volunteers)]
ImportsDep = Annotated[Imports, Depends(get_imports)]
ImportJobsDep = Annotated[ImportJobs, Depends(get_import_jobs)]
