"""The projection's pure parts: the merge of a poll's updates per record and the chunking of a poll."""

from __future__ import annotations

from services.reporting.domain.projection import UNITS, VOLUNTEER_STATS, Batch, Update, chunks
from tests.reporting.helpers import at, completed, unit_event


def test_updates_of_a_poll_are_merged_per_document() -> None:
    batch = Batch()
    batch.inc(UNITS, "K1", {"volunteers": 1, "new_volunteers.2026-04": 1})
    batch.inc(UNITS, "K1", {"volunteers": -1}, {"name": "甲"})
    batch.inc(UNITS, "K1", {}, {"name": "乙"})
    batch.update(VOLUNTEER_STATS, "v1").least("activity_name", "参与者乙")
    batch.update(VOLUNTEER_STATS, "v1").least("activity_name", "参与者甲")
    assert batch.docs[(UNITS, "K1")].operators() == {
        "$inc": {"volunteers": 0, "new_volunteers.2026-04": 1},
        "$set": {"name": "乙"},
    }
    assert batch.docs[(VOLUNTEER_STATS, "v1")].operators() == {"$min": {"activity_name": "参与者乙"}}
    assert len(batch.updates(VOLUNTEER_STATS)) == 1
    assert Update(set={"a": 1}, min={"a": 2, "b": 3}).operators() == {"$set": {"a": 1}, "$min": {"b": 3}}


def test_chunks_keep_the_order_and_bound_the_writes() -> None:
    four = [(f"v{n}", 1.0) for n in range(4)]
    poll = [completed(f"a{i}", "K1", at(2026, 8, 1), four) for i in range(5)]  # 5 writes each
    poll.insert(2, unit_event("K1", "county_team", ["P"]))  # 1 write
    parts = chunks(poll, most_writes=11)
    assert [len(p) for p in parts] == [3, 2, 1]
    assert [e for p in parts for e in p] == poll
    assert chunks(poll[:1], most_writes=1) == [poll[:1]]  # one event larger than the bound still goes alone
