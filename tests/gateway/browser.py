"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium, for the web
console's tests. Selenium blocks, so every call runs in a thread (``asyncio.to_thread``) and the event loop
keeps serving the cluster's actors meanwhile. Screenshots go to ``SHOAL_SCREENSHOTS`` (default: the test's
tmp dir)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
T = TypeVar("T")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium; it is in the dev extra)"
    if CHROMIUM is None or CHROMEDRIVER is None:
        return "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    return None


def new_driver(width: int = 1400, height: int = 900) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--enable-precise-memory-info", "--disable-extensions"):
        options.add_argument(arg)
    options.accept_insecure_certs = True  # the cluster's own CA signed the gateway's certificate
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


class Browser:
    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.driver = driver
        self.base = base
        self.shots = shots

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def open(self, hash_route: str = "") -> None:
        await self.navigate(f"{self.base}/ui/{hash_route}")

    async def navigate(self, url: str) -> None:
        """Load ``url``; again if Chromium gave up because the host's interfaces changed meanwhile
        (``ERR_NETWORK_CHANGED``: other tests on this machine create and remove network namespaces)."""
        for _ in range(5):
            await self.run(self.driver.get, url)
            if await self.js("return document.getElementById('view') !== null"):
                return
            await asyncio.sleep(0.5)
        raise AssertionError(f"{url} did not load: {await self.js('return document.body.innerText')}")

    async def js(self, script: str, *args: Any) -> Any:
        return await self.run(self.driver.execute_script, script, *args)

    async def wait(self, css: str, text: str | None = None, timeout: float = 20) -> Any:
        """The first element matching ``css`` (containing ``text`` if given), waiting up to ``timeout``."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        def found(driver: Any) -> Any:
            for element in driver.find_elements(By.CSS_SELECTOR, css):
                try:
                    if text is None or text in element.text:
                        return element
                except Exception:  # went stale while the view re-rendered: look again
                    continue
            return False

        try:
            return await self.run(WebDriverWait(self.driver, timeout, poll_frequency=0.05).until, found)
        except TimeoutException:
            body = await self.js("return document.body.innerText")
            raise AssertionError(f"no {css!r} with {text!r} within {timeout}s; page:\n{body[:3000]}\n"
                                 f"console: {await self.console_log()}") from None

    async def console_log(self) -> list[str]:
        try:
            entries = await self.run(self.driver.get_log, "browser")
        except Exception:
            return []
        return [str(e.get("message")) for e in entries]

    async def click(self, css: str, text: str | None = None) -> None:
        """Click the element ``wait`` finds; found again when a live re-render replaced it in between (the
        workloads view redraws a row when its object changes, e.g. a controller's status write)."""
        from selenium.common.exceptions import StaleElementReferenceException

        for _ in range(20):
            element = await self.wait(css, text)
            try:
                await self.run(element.click)
                return
            except StaleElementReferenceException:
                continue
        raise AssertionError(f"{css!r} with {text!r} was replaced by a re-render 20 times in a row")

    async def type(self, css: str, value: str, clear: bool = True) -> None:
        element = await self.wait(css)
        if clear:
            await self.run(element.clear)
        await self.run(element.send_keys, value)

    async def login(self, token: str) -> None:
        await self.type("#token", token)
        await self.click("#login-submit")

    async def screenshot(self, name: str) -> Path:
        path = self.shots / f"console-{name}.png"
        await self.run(self.driver.save_screenshot, str(path))
        return path


def skip_without_browser() -> pytest.MarkDecorator:
    reason = missing()
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def screenshot_dir(tmp_path: Path) -> Path:
    path = Path(os.environ.get("SHOAL_SCREENSHOTS") or tmp_path / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
