"""The conversation handed to orchestration with TurnStarted / AgentSwitched.

Built from the session's bounded tail only, so a turn needs no history read. History keeps
arrival order (a message sent while the assistant was answering gets the next seq at once),
but a model must see each answer right after its question and the message being answered
last. So the window orders answers by the seq of the question (`reply_to_seq`), leaves out
messages still queued, and always ends with the turn's own user message.
"""

from contracts.agents import MessageRole
from contracts.session_events import ContextMessage, ConversationContext
from services.session_commands.domain.policy import DeciderPolicy
from services.session_commands.domain.state import RecentMessage, SessionState, UserMessage


def context_window(
    state: SessionState,
    answering: UserMessage,
    policy: DeciderPolicy,
    *,
    switch_count: int | None = None,
) -> ConversationContext:
    """`switch_count` overrides the state's when the window goes out with a new switch."""
    excluded = {queued.seq for queued in state.queue} | {answering.seq}
    earlier = sorted((m for m in state.recent if m.seq not in excluded), key=_conversation_order)
    budget_messages = policy.context_max_messages - 1
    budget_chars = policy.context_max_chars - len(answering.content)
    chosen: list[RecentMessage] = []
    for message in reversed(earlier):
        if len(chosen) >= budget_messages or len(message.content) > budget_chars:
            break
        chosen.append(message)
        budget_chars -= len(message.content)
    chosen.reverse()
    # An answer whose question fell out of the window would start it mid-exchange: it goes too.
    while chosen and chosen[0].role is MessageRole.ASSISTANT:
        chosen.pop(0)
    messages = [_context_message(m) for m in chosen]
    messages.append(
        ContextMessage(
            seq=answering.seq,
            role=MessageRole.USER,
            content=answering.content,
            author_name=answering.author_name,
        )
    )
    return ConversationContext(
        system_prompt=state.system_prompt,
        messages=messages,
        switch_count=state.switch_count if switch_count is None else switch_count,
    )


def _conversation_order(message: RecentMessage) -> tuple[int, int, int]:
    anchor = message.reply_to_seq if message.reply_to_seq is not None else message.seq
    return (anchor, 1 if message.role is MessageRole.ASSISTANT else 0, message.seq)


def _context_message(message: RecentMessage) -> ContextMessage:
    return ContextMessage(
        seq=message.seq,
        role=message.role,
        content=message.content,
        author_name=message.author_name,
        agent=message.agent,
    )
