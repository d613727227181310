"""``python -m services.gateway``: the platform's single front door."""

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.service import serve
from shared.telemetry import setup_telemetry

if __name__ == "__main__":
    settings = GatewaySettings()
    # before the app (and its MongoDB client) exists, so PyMongo's command listener is registered on the client
    setup_telemetry("gateway")
    serve(create_app(settings), settings, "gateway")
