"""Numbers a provider or a model writes end up in MongoDB documents (kept results, session
documents, the audit log), where BSON keeps 64-bit integers: one document it cannot encode
fails the whole group commit it is part of, i.e. other sessions' writes. So the contracts
refuse such numbers where they enter."""

import pytest
from pydantic import TypeAdapter, ValidationError

from contracts.base import INT64_MAX
from contracts.llm import Usage
from contracts.tools import ToolArguments

pytestmark = pytest.mark.unit


def test_token_counts_beyond_64_bits_are_refused() -> None:
    assert Usage(prompt_tokens=INT64_MAX).prompt_tokens == INT64_MAX
    with pytest.raises(ValidationError):
        Usage(prompt_tokens=INT64_MAX + 1)


@pytest.mark.parametrize(
    "arguments",
    [{"n": 10**20}, {"a": [1, {"b": -(2**63) - 1}]}],
)
def test_tool_arguments_with_an_integer_beyond_64_bits_are_refused(
    arguments: dict[str, object],
) -> None:
    with pytest.raises(ValidationError, match="does not fit in 64 bits"):
        TypeAdapter(ToolArguments).validate_python(arguments)


def test_tool_arguments_within_64_bits_pass() -> None:
    arguments = {"n": INT64_MAX, "m": -(2**63), "f": 1e300, "flag": True}
    assert TypeAdapter(ToolArguments).validate_python(arguments) == arguments
