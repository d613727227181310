"""Shared core of the platform: event contracts, messaging, outbox, storage, settings, telemetry."""
