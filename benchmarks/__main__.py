"""``python -m benchmarks [--only NAME]``: runs the ceiling, then every benchmark (or only NAME).

Starts its own infrastructure on bench ports (Kafka 29092/29093, SecantusDB 27019, data wiped) unless
STVS_KAFKA_BOOTSTRAP and STVS_MONGO_URL are set.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from benchmarks.harness import RESULTS_FILE, infrastructure, run_all, select


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="Run the stvs benchmarks.")
    parser.add_argument("--only", metavar="NAME", help="run only this benchmark (the ceiling always runs)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    plan = select(args.only)  # before starting anything: an unknown name fails at once
    with infrastructure() as endpoints:
        failed = asyncio.run(run_all(endpoints, plan))
    print(f"results: {RESULTS_FILE}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
