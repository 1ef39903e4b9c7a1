"""Which message types exist and which of them each topic accepts."""

from collections.abc import Mapping
from typing import Final

from contracts.audit import AuditRecord
from contracts.base import Message
from contracts.commands import (
    ApproveToolCall,
    CancelTurn,
    CloseSession,
    CreateSession,
    DenyToolCall,
    EraseSession,
    ReopenSession,
    RetryTurn,
    SubmitToolResult,
    SubmitUserMessage,
    SwitchAgent,
    UpdateSession,
)
from contracts.dead_letters import DeadLetter
from contracts.llm import LLMCompleted, LLMFailed, LLMRequested, LLMTokenDelta
from contracts.session_events import (
    AgentSwitched,
    AssistantMessageAppended,
    CommandRejected,
    SessionClosed,
    SessionCreated,
    SessionErased,
    SessionExpired,
    SessionReopened,
    SessionUpdated,
    ToolApprovalRequested,
    ToolCallApproved,
    ToolCallDenied,
    ToolCallRequested,
    ToolResultRecorded,
    ToolRoundCompleted,
    TurnCancelled,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
    TurnStopped,
    UserMessageAccepted,
)
from contracts.topics import Service, TopicName
from contracts.turns import (
    CompleteTurn,
    ExpireSession,
    ExpireToolCalls,
    FailTurn,
    RecordToolResult,
    RequestToolCalls,
    SwitchAgentForTurn,
)

MessageType = type[Message]

TOPIC_MESSAGES: Final[Mapping[TopicName, tuple[MessageType, ...]]] = {
    TopicName.COMMANDS: (
        CreateSession,
        SubmitUserMessage,
        SwitchAgent,
        UpdateSession,
        CloseSession,
        ReopenSession,
        RetryTurn,
        CancelTurn,
        EraseSession,
        SubmitToolResult,
        ApproveToolCall,
        DenyToolCall,
    ),
    TopicName.TURNS: (
        SwitchAgentForTurn,
        CompleteTurn,
        FailTurn,
        ExpireSession,
        RequestToolCalls,
        RecordToolResult,
        ExpireToolCalls,
    ),
    TopicName.SESSION_EVENTS: (
        SessionCreated,
        UserMessageAccepted,
        TurnStarted,
        AgentSwitched,
        AssistantMessageAppended,
        TurnCompleted,
        TurnFailed,
        SessionUpdated,
        SessionClosed,
        SessionReopened,
        SessionExpired,
        SessionErased,
        TurnCancelled,
        TurnStopped,
        ToolCallRequested,
        ToolApprovalRequested,
        ToolCallApproved,
        ToolCallDenied,
        ToolResultRecorded,
        ToolRoundCompleted,
        CommandRejected,
    ),
    TopicName.LLM_REQUESTS: (LLMRequested,),
    TopicName.LLM_RESULTS: (LLMCompleted, LLMFailed),
    TopicName.LLM_STREAM: (LLMTokenDelta,),
    TopicName.AUDIT: (AuditRecord,),
    TopicName.DEAD_LETTERS: (DeadLetter,),
}


def type_name(model: MessageType) -> str:
    """The versioned discriminator, e.g. `session.create.v1`."""
    default = model.model_fields["type"].default
    assert isinstance(default, str)
    return default


MESSAGE_TYPES: Final[Mapping[str, MessageType]] = {
    type_name(model): model for models in TOPIC_MESSAGES.values() for model in models
}

TOPIC_OF_TYPE: Final[Mapping[str, TopicName]] = {
    type_name(model): topic for topic, models in TOPIC_MESSAGES.items() for model in models
}

SENT_BY: Final[Mapping[tuple[TopicName, Service], tuple[MessageType, ...]]] = {
    (TopicName.TURNS, Service.AGENT_ORCHESTRATION): (
        SwitchAgentForTurn,
        CompleteTurn,
        FailTurn,
        RequestToolCalls,
    ),
    (TopicName.TURNS, Service.TOOL_INVOCATION): (RecordToolResult,),
    (TopicName.TURNS, Service.EXPIRY_JOB): (ExpireSession, ExpireToolCalls),
}
"""Which types each producer of a topic sends, where its producers send different ones (the
AsyncAPI document's send operations). On other topics every producer may send every type."""
