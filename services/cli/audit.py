"""`agent-runtime audit tail / query`: implemented by the audit service's CLI module."""

from services.audit.cli import query, tail

__all__ = ["query", "tail"]
