"""The live run page in headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Playwright's own browser download does not work on these machines, so the fixture uses the
system Chromium, installing it with apt-get when it is missing (as `make test` does).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright

from weavegraph.web import InMemoryEventLog, create_app

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ALL_DONE = """() => {
  const nodes = [...document.querySelectorAll('#graph .wg-node[data-node]:not(.wg-terminal)')];
  return nodes.length > 0 && nodes.every((g) => g.dataset.state === 'done');
}"""


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system Chromium, installed on first use if apt-get can; else a clear failure."""
    if not Path(CHROMIUM).exists() and shutil.which("apt-get"):
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            subprocess.run(command, capture_output=True, timeout=300, check=False)
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing and `apt-get install -y chromium` did not provide it; "
            "install Debian's chromium package to run the browser tests",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str, tmp_path: Path) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=chromium,
            headless=True,
            args=ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context
        finally:
            await context.close()


class Proxy:
    """A TCP relay in front of the server whose connections can all be cut at once."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.writers |= {writer, up_writer}
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self.tasks.update(pipes)
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for task in pipes:
            task.cancel()
        for w in (writer, up_writer):
            w.close()
            self.writers.discard(w)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()

    def cut(self) -> None:
        """A network blip: every open connection dies at once."""
        for writer in list(self.writers):
            writer.transport.abort()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        self.cut()
        await self.server.wait_closed()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def start_run(page: Page, url: str, text: str) -> None:
    await page.goto(url)
    await page.wait_for_selector("body[data-ready=true]")
    await page.fill("#input", text)
    await page.click("#start")


@pytest.mark.timeout(120)
async def test_the_page_follows_a_run(
    serve: Any, kit: Any, browser: BrowserContext, tmp_path: Path
) -> None:
    base = await serve(create_app(kit.assistant_app(pace=0.1), event_log=InMemoryEventLog()))
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await start_run(page, base + "/", "What is a superstep?")
    await page.wait_for_function("() => window.weavegraph.status !== null", timeout=30000)
    await page.wait_for_function(ALL_DONE)
    view = await page.evaluate(
        "() => ({events: weavegraph.events, lastId: weavegraph.lastId, status: weavegraph.status,"
        " duplicates: weavegraph.duplicates, holes: weavegraph.holes})"
    )
    assert view["status"] == "completed"
    assert view["events"] == view["lastId"] > 0
    assert view["duplicates"] == view["holes"] == 0
    draft = page.locator('.stream[data-stream="draft-2"]')
    assert "done" in (await draft.get_attribute("class") or "")
    text = (await draft.locator(".stream-text").inner_text()).strip()
    assert text == "Draft 2 says supersteps merge at a barrier."
    assert await page.locator("#run-status").inner_text() == "completed"
    assert await page.locator("#log .row").count() == view["events"]
    badge = page.locator('#graph .wg-node[data-node="draft"] .wg-badge')
    assert await badge.text_content() == "\u00d72"  # draft ran twice
    # The filters hide rows by kind and by node.
    await page.uncheck('#filters input[data-kind="diagnostic"]')
    await page.select_option("#node-filter", "draft")
    kinds = await page.eval_on_selector_all(
        "#log .row", "rows => rows.filter(r => r.offsetParent).map(r => r.dataset.node)"
    )
    assert kinds
    assert set(kinds) == {"draft"}
    await page.check('#filters input[data-kind="diagnostic"]')
    await page.select_option("#node-filter", "")
    shot = tmp_path / "run.png"
    await page.screenshot(path=shot, full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 30_000
    # A link to a run the server does not know says so, and stops trying.
    await page.goto(base + "/?again#run=nope")
    await page.wait_for_function("() => document.querySelector('#conn').dataset.state === 'error'")
    assert await page.locator("#message").inner_text() == "unknown run 'nope'"
    assert errors == []


@pytest.mark.timeout(120)
async def test_the_page_reconnects_after_a_network_blip(
    serve: Any, kit: Any, browser: BrowserContext
) -> None:
    base = await serve(create_app(kit.assistant_app(pace=0.25), event_log=InMemoryEventLog()))
    proxy = Proxy(int(base.rsplit(":", 1)[1]))
    url = await proxy.start()
    try:
        page = await browser.new_page()
        await start_run(page, url + "/", "blip")
        await page.wait_for_function("() => window.weavegraph.events >= 15")
        proxy.cut()
        await page.wait_for_function("() => window.weavegraph.status !== null", timeout=30000)
        view = await page.evaluate(
            "() => ({events: weavegraph.events, lastId: weavegraph.lastId,"
            " status: weavegraph.status, holes: weavegraph.holes,"
            " reconnects: weavegraph.reconnects})"
        )
        rows = await page.eval_on_selector_all("#log .row", "rows => rows.map(r => +r.dataset.id)")
    finally:
        await proxy.close()
    assert view["status"] == "completed"
    assert view["reconnects"] >= 1
    assert view["holes"] == 0
    assert rows == list(range(1, view["lastId"] + 1))  # every event once, in order
    assert view["events"] == view["lastId"]
