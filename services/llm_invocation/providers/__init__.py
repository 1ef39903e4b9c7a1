"""LLM providers behind one protocol: the OpenAI-compatible HTTP streaming client, the offline provider, error shapes."""
