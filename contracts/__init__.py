"""Agent Runtime contracts: every message that crosses a topic, and the topics themselves."""
