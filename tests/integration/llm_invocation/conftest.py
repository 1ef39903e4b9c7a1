"""Fixtures of the llm-invocation integration tests: the local OpenAI-compatible server."""

from collections.abc import AsyncIterator

import pytest

from tests.support.openai_server import FakeOpenAIServer


@pytest.fixture
async def openai_server() -> AsyncIterator[FakeOpenAIServer]:
    server = FakeOpenAIServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
