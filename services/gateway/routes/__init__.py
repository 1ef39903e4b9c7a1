"""The /v1 routers: sessions, messages, agents; and the unversioned health routes."""
