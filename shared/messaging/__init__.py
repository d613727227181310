"""Kafka messaging: broker factory, topics, the outbox relay, idempotent consumers and dead letters."""
