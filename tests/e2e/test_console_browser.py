"""The web console in a real browser (headless Debian chromium driven by Playwright): key,
new session, a message whose tokens stream in, the agent switch, a reload that shows the
history. Screenshots go to .run/ for people to look at."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, Route, async_playwright, expect

from tests.conftest import REPO_ROOT
from tests.e2e.chromium import CHROMIUM_ARGS, chromium_path
from tests.e2e.conftest import Pipeline
from tests.e2e.gateway_process import GatewayProcess, start_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

__all__ = ["chromium_path"]

SCREENSHOTS = REPO_ROOT / ".run"
QUESTION = "The importer crashes with a KeyError traceback, why?"


@pytest.fixture
def pipeline_env() -> dict[str, str]:
    return {"AGENT_RUNTIME_OFFLINE_CHUNK_DELAY_S": "0.03"}  # tokens paced like a model's


@pytest.fixture
async def gateway(pipeline: Pipeline, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    process = await start_gateway(
        tmp_path / "gateway",
        pipeline.stack.env,
        ("tenant-a",),
        {"AGENT_RUNTIME_GATEWAY_RATE_LIMIT_BURST": "1000"},
    )
    try:
        yield process
    finally:
        process.stack.stop_all(timeout_s=10.0)


async def test_console_streams_a_turn_and_shows_the_history(
    gateway: GatewayProcess, chromium_path: Path
) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=str(chromium_path), args=list(CHROMIUM_ARGS)
        )
        try:
            page = await browser.new_page(viewport={"width": 1000, "height": 900})
            await page.goto(gateway.url + "/")
            await page.get_by_role("textbox", name="API key").fill(gateway.keys["tenant-a"])
            await page.get_by_role("button", name="Use key").click()
            await page.get_by_role("button", name="New session").click()
            await expect(page.get_by_text("Live", exact=True)).to_be_visible(timeout=30_000)

            message = page.get_by_role("textbox", name="Message")
            await message.fill(QUESTION)
            await message.press("Enter")

            await expect(page.locator("#log .system", has_text="Agent switched")).to_have_count(
                1, timeout=60_000
            )
            answer = page.locator("#log li.assistant").last
            await expect(answer).not_to_have_class("assistant streaming", timeout=60_000)
            deltas = int(await answer.get_attribute("data-deltas") or "0")
            assert deltas > 1, "the answer did not arrive as streamed tokens"
            streamed = await answer.locator(".text").inner_text()
            await page.screenshot(path=str(SCREENSHOTS / "console.png"), full_page=True)

            session_id = await page.locator("#chat-session").inner_text()
            await check_stored(gateway, session_id, streamed)

            await page.reload()
            await expect(page.locator("#log li.user .text")).to_have_text(
                [QUESTION], timeout=30_000
            )
            await expect(page.locator("#log li.assistant .text")).to_have_text([streamed])
            await expect(page.locator("#agent-current")).to_contain_text("debug")
            await expect(page.get_by_text("Live", exact=True)).to_be_visible(timeout=30_000)
            await page.get_by_role("button", name="Reconnect stream").click()
            await expect(page.get_by_text("Live", exact=True)).to_be_visible(timeout=30_000)
            await switch_while_streaming(page, gateway, session_id)
            await turn_while_the_history_loads(page, gateway)
            await turn_while_the_stream_cannot_open(page, gateway)
            await phone_width(page)
        finally:
            await browser.close()


async def switch_while_streaming(page: Page, gateway: GatewayProcess, first: str) -> None:
    """A new session opened while the first one has a turn: nothing of the first shows in the
    second's log, and the second's stream never resumes at the first's event id (its first
    open fails here, so the console recovers from the last id it holds)."""
    events_urls: list[str] = []
    recovered = asyncio.Event()

    async def fail_first_open(route: Route) -> None:
        events_urls.append(route.request.url)
        if len(events_urls) == 1:
            await route.fulfill(status=503, body="{}", content_type="application/problem+json")
            return
        recovered.set()
        await route.continue_()

    async def history_during_a_turn(route: Route) -> None:
        # The second session's history is read while the first one has a whole turn.
        async with httpx.AsyncClient(base_url=gateway.url, timeout=60.0) as http:
            answered = await http.post(
                f"/v1/sessions/{first}/messages",
                json={"content": "Tell me a story."},
                headers={**gateway.auth("tenant-a"), "Prefer": "wait=30"},
            )
        assert answered.json()["status"] == "completed", answered.text
        await route.continue_()

    def other_session(url: str) -> bool:
        return first not in url

    await page.route(lambda url: other_session(url) and "/events" in url, fail_first_open)
    await page.route(lambda url: other_session(url) and "/messages?" in url, history_during_a_turn)
    await page.get_by_role("button", name="New session").click()
    await expect(page.locator("#chat-session")).not_to_have_text(first, timeout=30_000)
    await asyncio.wait_for(recovered.wait(), 60)  # the failed open, its recovery 2-5 s later
    await expect(page.get_by_text("Live", exact=True)).to_be_visible(timeout=30_000)
    assert not any("after=" in url for url in events_urls), events_urls
    await expect(page.locator("#log li")).to_have_count(0)
    await page.unroute_all(behavior="wait")  # a handler still running must not race it


async def turn_while_the_history_loads(page: Page, gateway: GatewayProcess) -> None:
    """A whole turn between the console's read of the history (empty) and its arrival: it shows
    once the history is in (it came on the stream, which opens first), not only after a reload."""
    shown: list[str] = []

    async def history_then_a_turn(route: Route) -> None:
        read = await route.fetch()  # the history as the server has it now
        session_id = route.request.url.split("/v1/sessions/")[1].split("/")[0]
        async with httpx.AsyncClient(base_url=gateway.url, timeout=60.0) as http:
            answered = await http.post(
                f"/v1/sessions/{session_id}/messages",
                json={"content": "Hello there."},
                headers={**gateway.auth("tenant-a"), "Prefer": "wait=30"},
            )
        assert answered.json()["status"] == "completed", answered.text
        shown.append(answered.json()["answer"]["content"])
        await route.fulfill(response=read)

    await page.route(lambda url: "/messages?" in url, history_then_a_turn)
    await page.get_by_role("button", name="New session").click()
    await expect(page.locator("#log li.user .text")).to_have_text(["Hello there."])
    await expect(page.locator("#log li.assistant")).not_to_have_class("assistant streaming")
    await expect(page.locator("#log li.assistant .text")).to_have_text(shown)
    await page.unroute_all(behavior="wait")  # a handler still running must not race it


async def turn_while_the_stream_cannot_open(page: Page, gateway: GatewayProcess) -> None:
    """A new session whose first stream open fails (the history is shown without it), and a
    whole turn before the retry 2-5 s later: the retry has no id to resume from, so it reads
    the history again once its stream started; it streamed from then on, and the turn was
    missing until a reload."""
    opens: list[str] = []
    shown: list[str] = []

    async def fail_then_a_turn(route: Route) -> None:
        opens.append(route.request.url)
        if len(opens) == 1:
            await route.fulfill(status=503, body="{}", content_type="application/problem+json")
            return
        if len(opens) == 2:  # the retry: the turn runs while no stream is open
            session_id = route.request.url.split("/v1/sessions/")[1].split("/")[0]
            async with httpx.AsyncClient(base_url=gateway.url, timeout=60.0) as http:
                answered = await http.post(
                    f"/v1/sessions/{session_id}/messages",
                    json={"content": "Are you there?"},
                    headers={**gateway.auth("tenant-a"), "Prefer": "wait=30"},
                )
            assert answered.json()["status"] == "completed", answered.text
            shown.append(answered.json()["answer"]["content"])
        await route.continue_()

    await page.route(lambda url: "/events" in url, fail_then_a_turn)
    await page.get_by_role("button", name="New session").click()
    await expect(page.locator("#log li.user .text")).to_have_text(
        ["Are you there?"], timeout=60_000
    )
    await expect(page.locator("#log li.assistant .text")).to_have_text(shown)
    await expect(page.get_by_text("Live", exact=True)).to_be_visible(timeout=30_000)
    await page.unroute_all(behavior="wait")  # a handler still running must not race it


async def check_stored(gateway: GatewayProcess, session_id: str, streamed: str) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        history = await http.get(
            f"/v1/sessions/{session_id}/messages", headers=gateway.auth("tenant-a")
        )
    assert history.json()["messages"][-1]["content"] == streamed


async def phone_width(page: Page) -> None:
    # A session with a long title: a select is as wide as its longest option unless the CSS
    # says otherwise.
    await page.evaluate(
        """() => {
            const option = document.createElement("option");
            option.textContent = "Console session with a rather long title, ".repeat(3);
            document.querySelector("#session-pick").append(option);
        }"""
    )
    await page.set_viewport_size({"width": 375, "height": 812})
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the console scrolls sideways at phone width ({width}px)"
    await page.screenshot(path=str(SCREENSHOTS / "console-phone.png"), full_page=True)
