"""llm-invocation: the adapter between the runtime and LLM providers (see docs/llm-invocation.md)."""
