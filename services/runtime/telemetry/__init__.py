"""Tracing, metrics and structured logs for every service on the runtime."""
