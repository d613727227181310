"""What must still hold of an activity's places when a decision on its sign-ups is written (first come, first served).

A decision is taken on the counters as read; it is written only if the counters, when the write applies, would give
the same answers. Each premise says so in plain terms (`holds`); the storage adapter writes the same condition in the
database's own terms, so that the database, not this process, decides when replicas race.
"""

from __future__ import annotations

from dataclasses import dataclass


def place_free(capacity: int, confirmed: int, waitlisted: int) -> bool:
    """A place nobody on the waitlist is owed."""
    return confirmed < capacity and waitlisted == 0


@dataclass(frozen=True)
class PlaceFree:
    """A newcomer is confirmed: a place is free and nobody waits for one."""

    def holds(self, capacity: int, confirmed: int, waitlisted: int) -> bool:
        return place_free(capacity, confirmed, waitlisted)


@dataclass(frozen=True)
class NoPlaceFree:
    """A newcomer joins the waitlist: the house is full, or people wait."""

    def holds(self, capacity: int, confirmed: int, waitlisted: int) -> bool:
        return not place_free(capacity, confirmed, waitlisted)


@dataclass(frozen=True)
class PlaceLeft:
    """A waitlisted sign-up moves up: a place is left."""

    def holds(self, capacity: int, confirmed: int, waitlisted: int) -> bool:
        return confirmed < capacity


@dataclass(frozen=True)
class WithinCapacity:
    """A revised capacity: not below the confirmed sign-ups, whatever was confirmed since the read."""

    capacity: int

    def holds(self, capacity: int, confirmed: int, waitlisted: int) -> bool:
        return confirmed <= self.capacity


@dataclass(frozen=True)
class BatchFits:
    """``confirmed`` newcomers take places, then ``waitlisted`` join the waitlist (decided in that order):

    - only places taken: as many places still free, and nobody waiting for one;
    - only the waitlist joined: no place free for a newcomer (the house full, or people waiting);
    - both: exactly the last free places taken, nobody waiting before.
    """

    confirmed: int
    waitlisted: int

    def holds(self, capacity: int, confirmed: int, waitlisted: int) -> bool:
        left = capacity - confirmed
        if self.confirmed and self.waitlisted:
            return left == self.confirmed and waitlisted == 0
        if self.confirmed:
            return left >= self.confirmed and waitlisted == 0
        if self.waitlisted:
            return not (left > 0 and waitlisted == 0)
        return True


Places = PlaceFree | NoPlaceFree | PlaceLeft | WithinCapacity | BatchFits
