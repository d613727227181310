"""Command line of the local infrastructure: ``python -m infra.local {install,up,run,status}``.

- ``install``: download Kafka / build SecantusDB into the cache, start nothing.
- ``up``: start Kafka and SecantusDB, print the endpoints, run until Ctrl-C / SIGTERM.
- ``run``: ``up`` plus topics and every service (the ``make run`` supervisor).
- ``status``: what is installed and running.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from types import FrameType

from infra.local.runner import InfraError, InfraRunner, status


def _up() -> int:
    runner = InfraRunner()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Handlers before start: a Ctrl-C during the ~15 s start-up still stops the children cleanly.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        endpoints = runner.start()
        print(f"Kafka:   {endpoints.kafka_bootstrap}\nMongoDB: {endpoints.mongo_url}", flush=True)
        print(f"Logs:    {runner.log_dir}\nPress Ctrl-C to stop.", flush=True)
        while not stop.wait(1.0):
            if dead := runner.dead_children():
                for name, code in dead.items():
                    print(f"!! {name} exited with code {code}; see {runner.log_path(name)}", file=sys.stderr)
                return 1
        return 0
    finally:
        print("stopping...", file=sys.stderr, flush=True)
        runner.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local", description="Local Kafka + SecantusDB for stvs.")
    parser.add_argument("command", choices=["install", "up", "run", "status"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refused connections while probing are expected
    for chatty in ("httpx", "mail.log"):  # health probes; the mail catcher's SMTP sessions (it says one line a mail)
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        if args.command == "install":
            InfraRunner().install()
            print("infrastructure installed", flush=True)
            return 0
        if args.command == "up":
            return _up()
        if args.command == "run":
            from infra.local.supervisor import run

            return run()
        print(json.dumps(status(), indent=2))
        return 0
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
