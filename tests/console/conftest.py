"""A real node running the example shop, and real headless Chromium (Playwright) to look at it.

``shop`` is one node per test module; ``page`` is a fresh browser page that fails the test if
the page raised a JavaScript error; ``screenshot(page, name)`` keeps a full-page picture under
``test-artifacts/console/`` (or ``$STACKYARD_ARTIFACTS/console``) for people to look at.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from stackyard.testing import NodeProcess

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop"
ARTIFACTS = Path(os.environ.get("STACKYARD_ARTIFACTS", ROOT / "test-artifacts")) / "console"


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (`make test` installs it)")
        pytest.skip("chromium is not installed (`make test` installs it)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # per module, not per session: while Playwright's sync API runs, its event loop is the
    # thread's running loop, and the asyncio tests of other folders could not run theirs
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path())
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, f"the page raised JavaScript errors: {errors}"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data_dir = tmp_path_factory.mktemp("shop") / "data"
    with NodeProcess(SHOP, data_dir=data_dir) as node:
        node.wait_ready(90)
        yield node


def console_url(node: NodeProcess, path: str = "/") -> str:
    return f"{node.control_url}/_console{path}"


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def get(url: str, data: bytes | None = None, method: str | None = None) -> int:
    """A plain HTTP call for generating traffic; the status code (errors included)."""
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
