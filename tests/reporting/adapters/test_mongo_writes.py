"""The documents the projection's records become (pure: no database): the stored layout is the one before the
rooms — a volunteer's hours in its bucket under ``v.<id>``, one upsert per document."""

from __future__ import annotations

from pymongo import UpdateOne

from services.reporting.adapters.mongo import VOLUNTEER_HOURS, hours_bucket, writes
from services.reporting.domain.projection import UNIT_STATS, Batch


def two_in_one_bucket() -> tuple[str, str]:
    seen: dict[str, str] = {}
    for n in range(10_000):
        vid = f"v{n}"
        bucket = hours_bucket(vid)
        if bucket in seen:
            return seen[bucket], vid
        seen[bucket] = vid
    raise AssertionError("no two ids share a bucket")


def test_hours_records_are_written_into_their_buckets() -> None:
    first, second = two_in_one_bucket()
    batch = Batch()
    batch.inc(VOLUNTEER_HOURS, first, {"h": 200, "a": 1})
    batch.update(VOLUNTEER_HOURS, first).least("n", "参与者甲")
    batch.inc(VOLUNTEER_HOURS, second, {"h": 150, "a": 1})
    batch.inc(VOLUNTEER_HOURS, "a.b$c", {"h": 50})  # an id usable as a field name
    assert writes(batch, VOLUNTEER_HOURS) == [
        UpdateOne(
            {"_id": hours_bucket(first)},
            {
                "$inc": {f"v.{first}.h": 200, f"v.{first}.a": 1, f"v.{second}.h": 150, f"v.{second}.a": 1},
                "$min": {f"v.{first}.n": "参与者甲"},
            },
            upsert=True,
        ),
        UpdateOne({"_id": hours_bucket("a.b$c")}, {"$inc": {"v.a_b_c.h": 50}}, upsert=True),
    ]


def test_other_records_are_one_upsert_each() -> None:
    batch = Batch()
    batch.inc(UNIT_STATS, "K1:2026", {"activities": 1}, {"unit_id": "K1", "year": 2026})
    batch.inc(UNIT_STATS, "K1:2026", {"activities": 1})
    batch.inc(UNIT_STATS, "K2:2026", {}, {})  # nothing to write
    assert writes(batch, UNIT_STATS) == [
        UpdateOne({"_id": "K1:2026"}, {"$inc": {"activities": 2}, "$set": {"unit_id": "K1", "year": 2026}}, upsert=True)
    ]
