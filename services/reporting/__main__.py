"""``python -m services.reporting``: run the reporting service."""

from __future__ import annotations

from shared.service import serve

from .app import create_app
from .settings import ReportingSettings


def main() -> None:
    settings = ReportingSettings()
    serve(create_app(settings), settings, "reporting")


if __name__ == "__main__":
    main()
