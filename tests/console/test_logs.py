"""The logs page in real Chromium: a search by a correlation id the test sent finds the
service's lines, "more" pages with the cursor, and the live tail shows a new line without a
reload, and stops when switched off."""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from urllib.parse import quote

from playwright.sync_api import Page, expect

from stackyard.testing import NodeProcess

from .conftest import console_url, get, screenshot
from .test_requests import call


def wait_for_logs(node: NodeProcess, correlation_id: str, count: int = 1) -> None:
    """Until the log search finds ``count`` lines of the correlation id (they are written
    asynchronously)."""
    url = f"{node.control_url}/_stackyard/logs/search?correlation_id={quote(correlation_id)}"
    deadline = time.monotonic() + 15
    while len(json.loads(urllib.request.urlopen(url).read())) < count:
        assert time.monotonic() < deadline, f"no log lines of {correlation_id} in time"
        time.sleep(0.2)


def test_a_search_by_correlation_id_finds_the_lines(shop: NodeProcess, page: Page) -> None:
    correlation_id = f"logs-{uuid.uuid4().hex[:12]}"
    assert call(shop.gateway_url + "/catalog/items", correlation_id) == 200
    assert call(shop.gateway_url + "/catalog/items/2", correlation_id) == 200
    wait_for_logs(shop, correlation_id, 2)

    page.goto(console_url(shop, "/logs"))
    expect(page).to_have_title("Logs · shop · Stackyard")
    page.fill('input[name="correlation_id"]', correlation_id)
    page.click('#log-filters button[type="submit"]')
    page.wait_for_url(f"**/logs?*correlation_id={correlation_id}*")
    lines = page.locator("#log-rows tr.log-line")
    expect(lines).to_have_count(2)
    # newest first: the item's line, then the list's
    expect(lines.nth(0)).to_contain_text("GET /items/2")
    expect(lines.nth(1)).to_contain_text("GET /items")
    expect(lines.nth(0)).to_have_attribute("data-service", "catalog")
    expect(lines.nth(0).locator(".badge")).to_have_text("info")
    expect(lines.nth(0).locator("a.correlation-link")).to_have_attribute(
        "href", f"/_console/logs?correlation_id={correlation_id}"
    )
    screenshot(page, "logs")

    # full text finds the same lines by a word of their JSON fields; the filters combine
    page.goto(console_url(shop, f"/logs?q={correlation_id}&service=catalog&level=info"))
    expect(page.locator("#log-rows tr.log-line")).to_have_count(2)
    page.goto(console_url(shop, f"/logs?q={correlation_id}&level=error"))
    expect(page.locator("#log-rows tr.log-line")).to_have_count(0)
    expect(page.locator("#log-rows tr.empty")).to_have_count(1)
    response = page.goto(console_url(shop, "/logs?since=yesterday-ish"))
    assert response is not None and response.status == 400
    expect(page.locator(".filter-error")).to_contain_text("since")


def test_more_appends_the_next_page(shop: NodeProcess, page: Page) -> None:
    correlation_id = f"more-{uuid.uuid4().hex[:12]}"
    for _ in range(5):
        assert call(shop.gateway_url + "/catalog/items", correlation_id) == 200
    wait_for_logs(shop, correlation_id, 5)

    page.goto(console_url(shop, f"/logs?correlation_id={correlation_id}&limit=2"))
    lines = page.locator("#log-rows tr.log-line")
    expect(lines).to_have_count(2)
    page.click("#log-rows tr.more button")
    expect(lines).to_have_count(4)
    page.click("#log-rows tr.more button")
    expect(lines).to_have_count(5)
    expect(page.locator("#log-rows tr.more")).to_have_count(0)
    times = lines.evaluate_all("rows => rows.map(r => r.dataset.time)")
    # every line once, newest first: the same times as one search of them all (two lines of
    # the two catalog instances may share a millisecond)
    url = f"{shop.control_url}/_stackyard/logs/search?correlation_id={correlation_id}"
    found = json.loads(urllib.request.urlopen(url).read())
    assert times == sorted(times, reverse=True)
    assert sorted(times) == sorted(record["time"] for record in found)


def test_the_live_tail_shows_new_lines_without_a_reload(shop: NodeProcess, page: Page) -> None:
    page.goto(console_url(shop, "/logs?service=catalog"))
    page.evaluate("window.notReloaded = true")
    page.check("#logs-live")
    expect(page.locator("#logs")).to_have_attribute("data-live", "on")
    assert "live=1" in page.url
    correlation_id = f"tail-{uuid.uuid4().hex[:12]}"
    assert call(shop.gateway_url + "/catalog/items/3", correlation_id) == 200
    line = page.locator(f'#log-rows tr.log-line:has(a[href$="{correlation_id}"])')
    expect(line).to_have_count(1, timeout=15_000)
    expect(line).to_contain_text("GET /items/3")
    expect(line).to_have_class(re.compile(r"\btailed\b"))  # put on top by the tail
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#logs-status")).to_contain_text("live tail on")
    screenshot(page, "logs-live")

    # off: a later line does not appear; the address no longer asks for the tail
    page.uncheck("#logs-live")
    assert "live=1" not in page.url
    quiet = f"quiet-{uuid.uuid4().hex[:12]}"
    assert call(shop.gateway_url + "/catalog/items/3", quiet) == 200
    wait_for_logs(shop, quiet)
    page.wait_for_timeout(4500)
    expect(page.locator(f'#log-rows a[href$="{quiet}"]')).to_have_count(0)
    # a link with live=1 opens with the tail on
    page.goto(console_url(shop, "/logs?service=catalog&live=1"))
    expect(page.locator("#logs")).to_have_attribute("data-live", "on")
    assert get(console_url(shop, "/fragments/logs?limit=3")) == 200
