"""agent-orchestration: a stateless process manager that turns session facts into LLM
requests, and LLM results into the next step of a turn (hand off, complete or fail)."""
