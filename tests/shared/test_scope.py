"""The one scope rule (shared/scope.py), without I/O: what each role reaches."""

from __future__ import annotations

from shared.identity import Identity
from shared.problems import out_of_scope
from shared.scope import Reach, covers, covers_volunteer, system_may_read, unit_path

CITY = Identity(subject="c", role="unit_admin", unit_id="C1")
COUNTY = Identity(subject="k", role="unit_admin", unit_id="K1")
PROVINCE = Identity(subject="p", role="province_admin")
ME = Identity(subject="v", role="volunteer", volunteer_id="V1")
SYSTEM = Identity(subject="s", role="system")


def test_an_admin_reaches_its_unit_and_everything_below_nothing_beside_or_above() -> None:
    assert unit_path({"_id": "K1", "ancestors": ["P", "C1"]}) == ["P", "C1", "K1"]
    assert covers(CITY, ["P", "C1"]) and covers(CITY, ["P", "C1", "K1"]) and covers(CITY, ["P", "C1", "K1", "S1"])
    assert not covers(CITY, ["P", "C2", "K2"]) and not covers(CITY, ["P"])  # beside, above
    assert not covers(COUNTY, ["P", "C1"])  # its parent
    assert not covers(CITY, [])  # a unit nobody knows
    assert covers(PROVINCE, ["P", "C2"]) and covers(PROVINCE, [])
    for nobody in (ME, SYSTEM, Identity(subject="x", role="unit_admin")):
        assert not covers(nobody, ["P", "C1"])


def test_a_volunteer_is_reached_by_itself_and_by_the_admins_above_one_of_its_units() -> None:
    assert covers_volunteer(ME, "V1", []) and not covers_volunteer(ME, "V2", [["P", "C1", "K1"]])
    assert covers_volunteer(CITY, "V2", [["P", "C2"], ["P", "C1", "K1"]])  # one of its units is enough
    assert not covers_volunteer(CITY, "V2", [["P", "C2", "K2"]])
    assert covers_volunteer(PROVINCE, "V2", []) and not covers_volunteer(SYSTEM, "V2", [["P"]])


def test_reach_of_one_caller() -> None:
    city = Reach(CITY, frozenset({"C1", "K1"}))
    assert city.unit("K1") and not city.unit("C2") and not city.unit(None)
    assert city.volunteer("V9", ["C2", "K1"]) and not city.volunteer("V9", ["C2"])
    assert Reach(PROVINCE, None).unit("anything") and Reach(PROVINCE, None).admin
    me = Reach(ME, frozenset())
    assert me.volunteer("V1", []) and not me.volunteer("V2", ["C1"]) and not me.admin


def test_a_system_key_reads_the_organisation_and_statistics_never_a_person() -> None:
    for path in (["units"], ["units", "K1", "path"], ["compliance"], ["stats", "units", "K1"], ["deadlines"],
                 ["exports", "monthly", "K1", "2026-04.xlsx"], ["activities", "a1"], ["demands"]):  # fmt: skip
        assert system_may_read(path), path
    for path in (["volunteers"], ["volunteers", "V1"], ["stats", "volunteers", "V1"], ["activities", "a1", "signups"],
                 ["activities", "a1", "attendance"], ["activities", "a1", "checkin-code"], ["notifications"],
                 ["certificates", "volunteers", "V1.pdf"], ["forms", "volunteers", "export"], []):  # fmt: skip
        assert not system_may_read(path), path


def test_out_of_scope_is_404_for_reads_and_403_for_writes() -> None:
    assert out_of_scope(read=True).status == 404 and out_of_scope(read=False).status == 403
    assert out_of_scope(read=True, headers={"X-A": "b"}).headers == {"X-A": "b"}
