"""The HTTP API gateway: sessions, messages and agents over the Kafka pipeline (docs/gateway.md)."""
