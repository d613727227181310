"""The use cases of the reporting service: projecting the streams, the reads (compliance, roll-ups, statistics,
exports, charts), submitting reports, issuing and verifying certificates. No FastAPI, no PyMongo: they load through
the ports (:mod:`.ports`), decide in the domain, and save through the ports."""
