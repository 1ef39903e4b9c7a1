"""A rough token count of a request, before the provider tells us the real one.

About four characters per token for English text and JSON; good enough to pace a token-rate
limit, which is corrected with the reported usage afterwards.
"""

import json

from contracts.llm import LLMRequested

CHARS_PER_TOKEN = 4
DEFAULT_COMPLETION_TOKENS = 512
"""Expected completion when the request sets no max_tokens."""


def estimate_tokens(request: LLMRequested) -> int:
    characters = sum(len(message.content) for message in request.messages)
    characters += sum(
        len(json.dumps(tool.parameters)) + len(tool.description) for tool in request.tools
    )
    prompt = (characters + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN
    return prompt + (request.max_tokens or DEFAULT_COMPLETION_TOKENS)


def estimate_prompt_tokens(request: LLMRequested) -> int:
    return estimate_tokens(request) - (request.max_tokens or DEFAULT_COMPLETION_TOKENS)
