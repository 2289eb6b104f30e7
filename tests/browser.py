"""Load a page in a real headless Chromium and report what a person opening it would meet.

Driven over the DevTools protocol (aiohttp's websocket client, no extra dependency): console
errors and uncaught exceptions, every request the page makes, and a full-page screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import itertools
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def require_chromium() -> str:
    """The path of a Chromium, or a failed test that says how to install it."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.fail(
        "Chromium is not installed, and the model report is checked in a real headless browser. "
        "`make setup` installs it (deploy/local/system-deps.sh: Debian package chromium); "
        "elsewhere install it with your package manager.",
        pytrace=False,
    )


@dataclass
class PageVisit:
    """What loading one page gave."""

    problems: list[str] = field(default_factory=list)
    """Console errors, uncaught exceptions and error log entries (failed loads, CSP, …)."""
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    title: str = ""


class _DevTools:
    """One page target's DevTools session."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse, visit: PageVisit) -> None:
        self._socket = socket
        self._visit = visit
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.loaded = asyncio.Event()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[number] = answer
        await self._socket.send_str(json.dumps({"id": number, "method": method, "params": params}))
        return await answer

    async def listen(self) -> None:
        async for message in self._socket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                waiting = self._waiting.pop(data["id"])
                if "error" in data:
                    waiting.set_exception(RuntimeError(f"DevTools: {data['error']}"))
                else:
                    waiting.set_result(data.get("result", {}))
                continue
            self._event(data.get("method", ""), data.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
            self._visit.problems.append("console." + params["type"] + ": " + " ".join(texts))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self._visit.problems.append(f"uncaught: {details.get('text', '')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self._visit.problems.append(f"{entry.get('source')}: {entry.get('text')}")
        elif method == "Network.requestWillBeSent":
            self._visit.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self._visit.problems.append(f"failed to load: {params.get('errorText')}")
        elif method == "Page.loadEventFired":
            self.loaded.set()


async def _devtools_address(process: asyncio.subprocess.Process) -> str:
    """Chromium prints its DevTools address on stderr once it listens."""
    assert process.stderr is not None
    seen: list[str] = []
    while True:
        line = (await process.stderr.readline()).decode(errors="replace")
        if not line:
            raise RuntimeError("Chromium exited before it listened:\n" + "".join(seen[-20:]))
        seen.append(line)
        found = _LISTENING.search(line)
        if found:
            return found.group(1)


async def _drain(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and await stream.readline():
        pass


async def _visit(chromium: str, url: str, width: int, height: int, profile: str) -> PageVisit:
    visit = PageVisit()
    process = await asyncio.create_subprocess_exec(
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    drain: asyncio.Task[None] | None = None
    try:
        browser = await _devtools_address(process)
        drain = asyncio.create_task(_drain(process.stderr))  # a full pipe would stall Chromium
        http = "http://" + browser.removeprefix("ws://").split("/", 1)[0]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{http}/json/list") as listed:
                targets = await listed.json()
            page = next(t for t in targets if t.get("type") == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as socket:
                tools = _DevTools(socket, visit)
                listening = asyncio.create_task(tools.listen())
                try:
                    for domain in ("Runtime", "Log", "Network", "Page"):
                        await tools.call(f"{domain}.enable")
                    navigated = await tools.call("Page.navigate", url=url)
                    if navigated.get("errorText"):
                        visit.problems.append(f"navigation: {navigated['errorText']}")
                    await tools.loaded.wait()
                    # A round trip after the load event: every event before it has been read.
                    title = await tools.call("Runtime.evaluate", expression="document.title")
                    visit.title = str(title.get("result", {}).get("value", ""))
                    metrics = await tools.call("Page.getLayoutMetrics")
                    size = metrics.get("cssContentSize") or metrics["contentSize"]
                    shot = await tools.call(
                        "Page.captureScreenshot",
                        format="png",
                        captureBeyondViewport=True,
                        clip={
                            "x": 0,
                            "y": 0,
                            "width": width,
                            "height": max(float(size["height"]), 1.0),
                            "scale": 1,
                        },
                    )
                    visit.screenshot = base64.b64decode(shot["data"])
                finally:
                    listening.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await listening
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
    return visit


PAGE_DEADLINE_S = 90.0
"""Longest a page visit may take, Chromium's start included."""


async def open_page(url: str, *, width: int = 1280, height: int = 2400) -> PageVisit:
    """Load `url` in headless Chromium; what it logged and requested, and a full-page PNG."""
    chromium = require_chromium()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        async with asyncio.timeout(PAGE_DEADLINE_S):
            return await _visit(chromium, url, width, height, profile)


def visit_page(url: str, *, width: int = 1280, height: int = 2400) -> PageVisit:
    """`open_page` for a test without an event loop."""
    return asyncio.run(open_page(url, width=width, height=height))


def fetched(visit: PageVisit) -> list[str]:
    """The addresses the page requested, inline `data:` images left out."""
    return [address for address in visit.requests if not address.startswith("data:")]


def distinct_colours(png: bytes) -> int:
    """How many different colours a PNG has (a blank or failed page has a handful)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
    return len(colours or [])


def file_url(path: Path) -> str:
    return path.resolve().as_uri()
