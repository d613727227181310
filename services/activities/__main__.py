"""``python -m services.activities``: run the activities service."""

from __future__ import annotations

from shared.service import serve

from .app import create_app
from .settings import ActivitiesSettings


def main() -> None:
    settings = ActivitiesSettings()
    serve(create_app(settings), settings, "activities")


if __name__ == "__main__":
    main()
