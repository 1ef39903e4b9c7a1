"""audit: one immutable, redacted CloudEvent per fact on the audit topic, and a retained log."""
