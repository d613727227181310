"""Who may call an operation, declared by its service beside the route and enforced by the gateway (issue 15).

Each route of a service carries its declaration in its OpenAPI operation (``openapi_extra=access(...)``, under the
key :data:`KEY`); the gateway reads the services' documents and enforces every declaration the same way, so it
holds no copy of any service's routes. Pure: no framework, no driver.

- ``roles``: besides the province admin (who may call everything), ``unit_admin`` (inside its scope: every unit the
  operation names must be its unit or below, every volunteer it names one of its units' when the gateway knows the
  volunteer), ``volunteer`` (any volunteer), ``volunteer:self`` (a volunteer, only naming itself), ``system`` (a
  read-only system key; reads only). No role at all: the province admin's alone (everyone else 403).
- ``units`` / ``volunteers``: where the operation names a unit / a volunteer — ``path:unit_id``, ``query:unit_id``,
  ``body:unit_ids`` (a body field holding one id or a list of ids); ``query:recipient=volunteer:`` takes the value
  after the prefix ``volunteer:`` (a value without the prefix is taken whole).
- ``me``: where only a ``volunteer:self`` caller must name itself (a unit admin is not checked there: an activity's
  organiser cancels the sign-up of a volunteer from elsewhere).
- ``own_units``: a volunteer names only units it belongs to (a certificate's issuing unit).
- ``personal``: a read that shows or exports personal data (recorded in the audit log).
- :data:`INTERNAL`: an operation the gateway never forwards (health, readiness).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KEY = "x-stvs-access"
ROLES = frozenset({"unit_admin", "volunteer", "volunteer:self", "system"})
WHERE = ("path", "query", "body")


@dataclass(frozen=True)
class Position:
    """Where an operation names an id: ``where`` (path, query, body), the parameter or field, a value prefix."""

    where: str
    name: str
    prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> Position:
        where, _, rest = text.partition(":")
        name, _, prefix = rest.partition("=")
        if where not in WHERE or not name:
            raise ValueError(f"not a position: {text!r} (path:NAME, query:NAME[=PREFIX] or body:NAME)")
        return cls(where, name, prefix)

    def __str__(self) -> str:
        return f"{self.where}:{self.name}" + (f"={self.prefix}" if self.prefix else "")

    def ids(
        self, path: Mapping[str, str], query: Sequence[tuple[str, str]], body: Mapping[str, Any] | None
    ) -> list[str]:
        """The ids named here in one request (a body field may hold one id or a list of them)."""
        if self.where == "path":
            values: list[Any] = [path[self.name]] if self.name in path else []
        elif self.where == "query":
            values = [v for k, v in query if k == self.name]
        else:
            found = (body or {}).get(self.name)
            values = found if isinstance(found, list) else [found]
        return [v.removeprefix(self.prefix) for v in values if isinstance(v, str)]


@dataclass(frozen=True)
class Access:
    """One operation's declaration (see the module's docstring)."""

    roles: frozenset[str] = frozenset()
    units: tuple[Position, ...] = ()
    volunteers: tuple[Position, ...] = ()
    me: tuple[Position, ...] = ()
    own_units: bool = False
    personal: bool = False
    internal: bool = False

    def to_doc(self) -> dict[str, Any]:
        return {
            "roles": sorted(self.roles),
            "units": [str(p) for p in self.units],
            "volunteers": [str(p) for p in self.volunteers],
            "me": [str(p) for p in self.me],
            "own_units": self.own_units,
            "personal": self.personal,
            "internal": self.internal,
        }

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Access:
        """The declaration as an OpenAPI document carries it (ValueError when it is not one)."""
        roles = frozenset(doc.get("roles") or ())
        if not roles <= ROLES:
            raise ValueError(f"unknown roles {sorted(roles - ROLES)}")
        return cls(
            roles=roles,
            units=tuple(Position.parse(p) for p in doc.get("units") or ()),
            volunteers=tuple(Position.parse(p) for p in doc.get("volunteers") or ()),
            me=tuple(Position.parse(p) for p in doc.get("me") or ()),
            own_units=bool(doc.get("own_units")),
            personal=bool(doc.get("personal")),
            internal=bool(doc.get("internal")),
        )

    @property
    def province_only(self) -> bool:
        return not self.roles

    def allows(self, role: str) -> bool:
        if role == "volunteer":
            return bool(self.roles & {"volunteer", "volunteer:self"})
        return role == "province_admin" or role in self.roles

    @property
    def volunteer_self(self) -> bool:
        return "volunteer:self" in self.roles and "volunteer" not in self.roles

    @property
    def body_fields(self) -> bool:
        return any(p.where == "body" for p in (*self.units, *self.volunteers, *self.me))


def access(
    *roles: str,
    units: Sequence[str] = (),
    volunteers: Sequence[str] = (),
    me: Sequence[str] = (),
    own_units: bool = False,
    personal: bool = False,
) -> dict[str, Any]:
    """A route's ``openapi_extra``: ``@router.get("/x/{unit_id}", openapi_extra=access("unit_admin", "system",
    units=["path:unit_id"]))``."""
    declared = Access(
        roles=frozenset(roles),
        units=tuple(Position.parse(p) for p in units),
        volunteers=tuple(Position.parse(p) for p in volunteers),
        me=tuple(Position.parse(p) for p in me),
        own_units=own_units,
        personal=personal,
    )
    if not declared.roles <= ROLES:
        raise ValueError(f"unknown roles {sorted(declared.roles - ROLES)}")
    return {KEY: declared.to_doc()}


PROVINCE_ONLY = access()
INTERNAL: dict[str, Any] = {KEY: Access(internal=True).to_doc()}


def declared(operation: Mapping[str, Any]) -> Access | None:
    """The declaration an OpenAPI operation carries, None when it carries none."""
    doc = operation.get(KEY)
    return Access.of(doc) if isinstance(doc, Mapping) else None
