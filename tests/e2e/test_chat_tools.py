"""`agent-runtime chat` answers client tools itself (issue 20): run as a user would, in a
directory of its own, against the running pipeline with the offline provider — what `make run`
shows. Read a file (the orchestrator hands the request to the coder, which calls read_file),
refuse a path outside the directory, and create a file after a y at the approval question."""

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from contracts.commands import SubmitUserMessage
from services.cli.session_client import SessionClient, new_id
from services.cli.sessions import awaited_tool_calls
from tests.e2e.conftest import Pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

WITHIN_S = 60.0


class Chat:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.output = ""

    async def say(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n".encode())
        await self.process.stdin.drain()

    async def expect(self, text: str, start: int | None = None) -> str:
        """Read until `text` appears in what came since the last expectation (or since
        `start`); returns that."""
        assert self.process.stdout is not None
        start = len(self.output) if start is None else start
        deadline = asyncio.get_running_loop().time() + WITHIN_S
        while text not in self.output[start:]:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"{text!r} not shown; the chat said:\n{self.output}")
            try:
                chunk = await asyncio.wait_for(self.process.stdout.read(4096), left)
            except TimeoutError:
                raise AssertionError(f"{text!r} not shown; the chat said:\n{self.output}") from None
            if not chunk:
                raise AssertionError(f"the chat ended before {text!r}:\n{self.output}")
            self.output += chunk.decode(errors="replace")
        return self.output[start:]


@asynccontextmanager
async def running_chat(
    pipeline: Pipeline, workdir: Path, *options: str, **more_env: str
) -> AsyncIterator[Chat]:
    """`agent-runtime chat [options]` started in `workdir`; killed at the end if it is still
    running."""
    s = pipeline.settings
    env = {
        **os.environ,
        "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
        "AGENT_RUNTIME_MONGODB_URI": s.mongodb_uri,
        "AGENT_RUNTIME_MONGODB_DATABASE": s.mongodb_database,
        "AGENT_RUNTIME_TOPIC_PREFIX": s.topic_prefix,
        "AGENT_RUNTIME_TENANT_ID": s.tenant_id,
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "300",
        **more_env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        "chat",
        *options,
        cwd=workdir,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield Chat(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_the_chat_runs_client_tools_and_asks_before_writing(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / "notes.md").write_text("the secret word is pelican\n", encoding="utf-8")
    (tmp_path / "outside.txt").write_text("must not be read", encoding="utf-8")
    async with running_chat(pipeline, workdir) as chat:
        process = chat.process
        await chat.expect("you >")
        await chat.say("read file notes.md")
        shown = await chat.expect("coder answered (")  # the chat takes lines again
        assert "coder calls read_file" in shown
        assert "the secret word is pelican" in shown

        await chat.say("read file ../outside.txt")
        shown = await chat.expect("coder answered (")
        assert "is outside the working directory" in shown
        assert "must not be read" not in chat.output

        await chat.say("write file todo.txt with buy milk")
        await chat.expect("? allow coder to run write_file?")
        assert not (workdir / "todo.txt").exists()  # nothing runs before the answer
        await chat.say("y")
        shown = await chat.expect("coder answered (")
        assert "created todo.txt" in shown
        assert (workdir / "todo.txt").read_text(encoding="utf-8") == "buy milk"

        await chat.say("write file nope.txt with no")
        await chat.expect("? allow coder to run write_file?")
        await chat.say("n")
        shown = await chat.expect("coder answered (")
        assert "denied: the user said no in chat" in shown  # what the model read
        assert not (workdir / "nope.txt").exists()
        await chat.say("/quit")
        assert await asyncio.wait_for(process.wait(), WITHIN_S) == 0


async def test_the_prompt_shows_when_the_chat_waits_and_the_input_may_end_mid_turn(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """As in the README: `you >` before each message, none while an answer streams (it used
    to be printed right after a message was sent, then missing once the answer was there).
    The end of the input during a turn lets the answer finish, then the chat exits 0
    (`echo question | agent-runtime chat`); it was click's `Aborted!` and exit 1."""
    async with running_chat(pipeline, tmp_path) as chat:
        process = chat.process
        await chat.expect("you >")
        for line, done in (("hello there", "answered ("), ("/switch coder", "in chat)")):
            sent = len(chat.output)
            await chat.say(line)
            shown = await chat.expect(done, sent)
            assert "you >" not in shown[: shown.index(done)], shown
            after = sent + len(shown[: shown.index(done)])
            await chat.expect("\nyou >", after)  # the prompt comes back once it is done
        # A switch to the current agent is a no-op for session-commands: nothing to wait for
        # (the chat used to wait the whole reply timeout, every line refused meanwhile).
        await chat.say("/switch coder")
        await chat.expect("already talking to coder")
        await chat.say("/history")
        await chat.expect("hello there")
        # Over the contract's length: said, and the chat goes on (a ValidationError ended it).
        await chat.say("x" * 40_000)
        await chat.expect("not sent: content: String should have at most 32000 characters")
        await chat.say("what time is it?")
        assert process.stdin is not None
        process.stdin.close()
        await chat.expect("answered (")
        assert await asyncio.wait_for(process.wait(), WITHIN_S) == 0
        assert "Aborted" not in chat.output


async def test_quit_while_an_answer_streams_leaves_the_chat(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """`/quit` typed during a turn quits, like Ctrl-C (it was refused: "an answer is
    streaming")."""
    async with running_chat(pipeline, tmp_path) as chat:
        process = chat.process
        await chat.expect("you >")
        # Both lines at once: the second is read while the first one's turn runs.
        await chat.say("tell me a story\n/quit")
        assert await asyncio.wait_for(process.wait(), WITHIN_S) == 0
        assert process.stdout is not None
        chat.output += (await process.stdout.read()).decode(errors="replace")
        assert "an answer is streaming" not in chat.output, chat.output
        assert "Traceback" not in chat.output, chat.output


async def test_close_leaves_the_chat_while_its_input_stays_open(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """`/close` from a program that keeps the chat's stdin open: the chat exits 0. A read
    started while the close was applied outlived the chat, and its thread, blocked in the pipe,
    aborted the interpreter's shutdown (exit 134, "Fatal Python error")."""
    async with running_chat(pipeline, tmp_path) as chat:
        process = chat.process
        await chat.expect("you >")
        await chat.say("/close")
        await chat.expect("session closed")
        assert await asyncio.wait_for(process.wait(), WITHIN_S) == 0
        assert process.stdout is not None
        chat.output += (await process.stdout.read()).decode(errors="replace")
        assert "Fatal Python error" not in chat.output, chat.output


async def test_the_reply_timeout_does_not_run_while_the_user_decides(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """AGENT_RUNTIME_REPLY_TIMEOUT_S is for a pipeline that does not answer, not for a person
    thinking over an approval: it used to run on, say "no answer … are the services running?"
    mid-question, and the y typed next became a message of its own."""
    async with running_chat(pipeline, tmp_path, AGENT_RUNTIME_REPLY_TIMEOUT_S="2") as chat:
        process = chat.process
        await chat.expect("you >")
        await chat.say("write file todo.txt with buy milk")
        await chat.expect("? allow coder to run write_file?")
        await asyncio.sleep(4)  # the user: longer than the reply timeout
        await chat.say("y")
        shown = await chat.expect("coder answered (")
        assert "created todo.txt" in shown
        assert "no answer" not in chat.output, chat.output
        assert (tmp_path / "todo.txt").read_text(encoding="utf-8") == "buy milk"
        await chat.say("/quit")
        assert await asyncio.wait_for(process.wait(), WITHIN_S) == 0


async def test_an_approval_asked_after_the_input_ended_is_denied_and_the_chat_exits(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """`echo "write file …" | agent-runtime chat`: nobody can type y any more. The chat waited
    on the question until the turn's tool deadline (300 s) instead of letting the answer
    finish and exiting 0 as for any turn running when the input ends; now it denies."""
    async with running_chat(pipeline, tmp_path) as chat:
        process = chat.process
        await chat.expect("you >")
        await chat.say("write file todo.txt with buy milk")
        assert process.stdin is not None
        process.stdin.close()
        shown = await chat.expect("coder answered (")
        assert "? allow coder to run write_file?" in shown
        assert "denied: the chat's input ended before the user answered" in shown
        assert await asyncio.wait_for(process.wait(), WITHIN_S) == 0
        assert not (tmp_path / "todo.txt").exists()


async def test_history_in_the_chat_shows_the_conversations_end(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """`/history` showed the first 50 messages, so in a longer session never the latest ones,
    and then `more: --after-seq 50`, an option the chat does not take."""
    async with running_chat(pipeline, tmp_path) as chat:
        process = chat.process
        await chat.expect("you >")
        for number in range(1, 27):  # 52 messages: the user's and the answers
            await chat.say(f"question number {number}")
            await chat.expect("answered (")
        await chat.say("/history")
        shown = await chat.expect("pages through them all)")
        # Piped, the rows are tab-separated: seq, who, content, interrupted.
        assert "user\tquestion number 26\t" in shown, shown
        assert "user\tquestion number 1\t" not in shown, shown
        # The last 50: seq 3 to 52 (after the prompt, or first in what was read).
        assert re.search(r"(^|\s)3\tuser\tquestion number 2\t", shown), shown
        assert "--after-seq" not in shown
        assert "(the last 50 messages; `agent-runtime sessions history session-" in shown
        await chat.say("/quit")
        assert await asyncio.wait_for(process.wait(), WITHIN_S) == 0


async def test_a_resumed_chat_answers_the_calls_the_turn_waits_for(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """`chat --session` on a turn that waits for the chat (the earlier chat was killed at an
    approval question; a message sent with `agent-runtime send` made the coder read a file)
    answers those calls. It saw only events published after it started, so it answered
    nothing, said "no answer … are the services running?" to the next message, and the turn
    failed at its tool deadline."""
    (tmp_path / "notes.md").write_text("the secret word is pelican\n", encoding="utf-8")
    async with running_chat(pipeline, tmp_path) as first:
        await first.expect("you >")
        session_id = first.output.split("session ", 1)[1].split(" ", 1)[0]
        await first.say("write file todo.txt with buy milk")
        await first.expect("? allow coder to run write_file?")
        first.process.kill()  # its terminal is gone: nobody answered
        await first.process.wait()
    async with running_chat(pipeline, tmp_path, "--session", session_id) as resumed:
        shown = await resumed.expect("? allow coder to run write_file?")
        assert "the running turn waits for 1 tool call from this chat" in shown
        await resumed.say("y")
        shown = await resumed.expect("coder answered (")
        assert "created todo.txt" in shown
        await resumed.say("/quit")
        assert await asyncio.wait_for(resumed.process.wait(), WITHIN_S) == 0
    assert (tmp_path / "todo.txt").read_text(encoding="utf-8") == "buy milk"

    settings = pipeline.settings
    async with SessionClient(settings, session_id) as client:
        await client.publish(
            SubmitUserMessage(
                id=new_id("cmd"),
                session_id=session_id,
                tenant_id=settings.tenant_id,
                message_id=new_id("msg"),
                content="read file notes.md",
            )
        )
    deadline = asyncio.get_running_loop().time() + WITHIN_S
    while not await awaited_tool_calls(settings, settings.tenant_id, session_id):
        assert asyncio.get_running_loop().time() < deadline, "the read_file call never waited"
        await asyncio.sleep(0.2)
    # Another tenant's session reads as none, as every read of the read model.
    assert await awaited_tool_calls(settings, "another-tenant", session_id) == []
    async with running_chat(pipeline, tmp_path, "--session", session_id) as resumed:
        shown = await resumed.expect("coder answered (")
        assert "coder calls read_file" in shown
        assert "the secret word is pelican" in shown
        await resumed.say("/quit")
        assert await asyncio.wait_for(resumed.process.wait(), WITHIN_S) == 0
