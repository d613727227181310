"""Service-record certificates (志愿服务记录证明): issued as a signed number, a stored record and a PDF; verified by
the number alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.reporting.domain.certificates import SHOWN, new_number, number_is_authentic
from services.reporting.domain.errors import Forbidden, Invalid, NotFound
from services.reporting.domain.projection import Record
from services.reporting.domain.vocabulary import UnitKind
from shared.identity import Identity
from shared.scope import covers, unit_path

from .ports import CertificateStore, Documents, ReadModels, Registry
from .queries import Clock, Queries


@dataclass(frozen=True)
class Issued:
    number: str
    pdf: bytes


class Certificates:
    def __init__(
        self,
        read: ReadModels,
        store: CertificateStore,
        registry: Registry,
        documents: Documents,
        queries: Queries,
        secret: str,
        clock: Clock,
    ) -> None:
        self.read = read
        self.store = store
        self.registry = registry
        self.documents = documents
        self.queries = queries
        self.secret = secret
        self.clock = clock

    async def issue(self, identity: Identity, volunteer_id: str, unit_id: str | None) -> Issued:
        """A certificate of the volunteer's record as of now, in the name of a unit the caller may speak for."""
        if identity.role == "system":  # issuing writes a certificate: a read-only key may not
            raise Forbidden("read_only", "系统账号只能读取数据，不能出具证明")
        record = await self.queries.volunteer_record(identity, volunteer_id)
        units = await self.read.all_units()
        member_of = [u for u in record["unit_ids"] if u in units]
        province = next((u for u, d in units.items() if d["kind"] == UnitKind.PROVINCE_CORPS), None)
        issuer_id = unit_id or (identity.unit_id if identity.role == "unit_admin" else None)
        issuer_id = issuer_id or (member_of[0] if member_of else province)
        if issuer_id is None or issuer_id not in units:
            raise Invalid("no_issuing_unit", "无法确定出具单位，请指定 unit_id")
        if not may_issue_for(identity, units, issuer_id, member_of):
            raise Forbidden("forbidden_unit", "只能以本队伍、下级队伍或本人所在队伍的名义出具证明")
        masked = await self.registry.masked_id_number(identity, volunteer_id)
        now = self.clock()
        cert: Record = {
            "_id": new_number(self.secret, now),
            "volunteer_id": volunteer_id,
            "platform_number": record["platform_number"],
            "id_number_masked": masked,
            "display_name": record["display_name"],
            "hours": record["hours"],
            "activities": record["activities"],
            "star_level": record["star_level"],
            "issuing_unit_id": issuer_id,
            "issuing_unit_name": units[issuer_id].get("name"),
            "issued_at": now,
            "issued_by": identity.subject,
        }
        await self.store.add(cert)
        return Issued(str(cert["_id"]), self.documents.certificate_pdf(cert))

    async def verify(self, number: str) -> Record:
        """What the certificate of this number states; not found for a number not issued or altered."""
        invalid = NotFound("certificate_invalid", "证明编号无效：未找到该证明，或编号已被篡改")
        if not number_is_authentic(self.secret, number):
            raise invalid
        cert = await self.store.get(number)
        if cert is None:
            raise invalid
        return {
            "valid": True,
            "number": number,
            **{k: cert.get(k) for k in SHOWN},
            "issuing_unit_name": cert.get("issuing_unit_name"),
            "issued_at": cert.get("issued_at"),
        }


def may_issue_for(identity: Identity, units: dict[str, Record], issuer_id: str, member_of: Sequence[str]) -> bool:
    """An admin issues in the name of a unit in its scope, a volunteer in the name of one of its own units."""
    if identity.role == "province_admin":
        return True
    if identity.role == "volunteer":
        return issuer_id in member_of or (not member_of and units[issuer_id].get("kind") == UnitKind.PROVINCE_CORPS)
    return covers(identity, unit_path(units[issuer_id]))
