"""The audit view of LLM invocation facts: requests (every prompt message is content),
completions (the answer and each tool call's arguments are content) and failures."""

from contracts.audit import AuditOutcome
from contracts.base import Message
from contracts.llm import LLMCompleted, LLMFailed, LLMRequested, Usage
from services.audit.fact_view import ContentPiece, DetailValue, FactView, UnauditableFact


def llm_view_of(message: Message) -> FactView:
    match message:
        case LLMRequested():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                invocation_id=message.invocation_id,
                detail={
                    "step": message.step,
                    "agent": message.agent.value,
                    "model": message.model,
                    "temperature": message.temperature,
                    "max_tokens": message.max_tokens,
                    "messages": len(message.messages),
                    "tools": ",".join(tool.name for tool in message.tools),
                },
                parts=tuple(
                    ContentPiece(f"messages[{i}].content", m.content, m.role.value)
                    for i, m in enumerate(message.messages)
                )
                + tuple(
                    ContentPiece(f"messages[{i}].tool_calls[{j}].arguments", c.arguments, c.name)
                    for i, m in enumerate(message.messages)
                    for j, c in enumerate(m.tool_calls)
                ),
            )
        case LLMCompleted():
            return FactView(
                AuditOutcome.SUCCEEDED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                invocation_id=message.invocation_id,
                detail={
                    "step": message.step,
                    "agent": message.agent.value,
                    "finish_reason": message.finish_reason.value,
                    "provider": message.provider,
                    "model": message.model,
                    "tool_calls": len(message.tool_calls),
                    **usage_detail(message.usage),
                },
                content=message.content,
                parts=tuple(
                    ContentPiece(f"tool_calls[{i}].arguments", call.arguments, call.name)
                    for i, call in enumerate(message.tool_calls)
                ),
            )
        case LLMFailed():
            return FactView(
                AuditOutcome.FAILED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                invocation_id=message.invocation_id,
                detail={
                    "step": message.step,
                    "agent": message.agent.value,
                    "error_class": message.error_class,
                    "message": message.message,
                    "retryable": message.retryable,
                },
                content=message.partial_content or None,
            )
        case _:
            raise UnauditableFact(f"no audit view for {type(message).__name__}")


def usage_detail(usage: Usage | None) -> dict[str, DetailValue]:
    if usage is None:
        return {}
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
