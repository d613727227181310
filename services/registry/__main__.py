"""``python -m services.registry``: run the registry service."""

from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.service import serve

if __name__ == "__main__":
    settings = RegistrySettings()
    serve(create_app(settings), settings, "registry")
