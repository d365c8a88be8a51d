"""The requests page in real Chromium: the test's own requests, filtered, live, and the way
from a request to its trace (gateway and catalog spans) and its logs."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid

from playwright.sync_api import Page, expect

from stackyard.testing import NodeProcess

from .conftest import console_url, get, screenshot


def call(url: str, correlation_id: str) -> int:
    """GET ``url`` with an ``x-correlation-id``; the status code (errors included)."""
    request = urllib.request.Request(url, headers={"x-correlation-id": correlation_id})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_a_request_shows_with_its_status_and_opens_its_trace_and_logs(
    shop: NodeProcess, page: Page
) -> None:
    correlation_id = f"req-{uuid.uuid4().hex[:12]}"
    assert call(shop.gateway_url + "/catalog/items", correlation_id) == 200
    missing = f"req-missing-{uuid.uuid4().hex[:8]}"
    assert call(shop.gateway_url + "/catalog/items/404", missing) == 404

    page.goto(console_url(shop, "/requests"))
    expect(page).to_have_title("Requests · shop · Stackyard")
    row = page.locator(f'table.requests tr[data-correlation-id="{correlation_id}"]')
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text("GET")
    expect(row.locator("td").nth(3)).to_have_text("/catalog/items")
    expect(row.locator(".badge")).to_have_text("200")
    expect(row.locator(".badge")).to_have_class("badge s2xx")
    failed = page.locator(f'table.requests tr[data-correlation-id="{missing}"]')
    expect(failed.locator(".badge")).to_have_text("404")
    # newest first: the 404 was made after the 200
    ids = page.locator("table.requests tr[data-correlation-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.correlationId)"
    )
    assert ids.index(missing) < ids.index(correlation_id)
    screenshot(page, "requests")

    # the correlation id links to the logs page filtered by it
    href = row.locator("a.logs-link").get_attribute("href")
    assert href == f"/_console/logs?correlation_id={correlation_id}"

    row.locator("a.trace-link").click()
    expect(page).to_have_url(f"{shop.control_url}/_console/traces/{row_trace_id(page)}")
    waterfall = page.locator("#wf-scroll .wf-row")
    expect(waterfall.first).to_be_visible()
    expect(waterfall.filter(has_text="gateway")).not_to_have_count(0)
    expect(page.locator("#wf-scroll .wf-row", has_text="→ catalog")).to_have_count(1)
    expect(page.locator('#trace-summary [data-fact="services"]')).to_contain_text("catalog")
    page.locator("#wf-scroll .wf-row", has_text="→ catalog").click()
    detail = page.locator("#span-detail")
    expect(detail.locator("table.span-fields")).to_contain_text("CLIENT")
    expect(detail.locator("table.span-fields")).to_contain_text("remote endpoint")
    expect(detail.locator("table.span-tags")).to_contain_text("http.status_code")
    # the catalog instance's log line of this request, beside the waterfall
    logs = page.locator("#trace-logs li.log-line")
    expect(logs.filter(has_text="GET /items")).to_have_count(1, timeout=10_000)
    expect(logs.first).to_have_attribute("data-service", "catalog")
    screenshot(page, "trace")


def row_trace_id(page: Page) -> str:
    trace_id = page.locator("#trace").get_attribute("data-trace-id")
    assert trace_id
    return trace_id


def test_filters_are_in_the_url_and_apply(shop: NodeProcess, page: Page) -> None:
    ok, missing = f"ok-{uuid.uuid4().hex[:8]}", f"nf-{uuid.uuid4().hex[:8]}"
    assert call(shop.gateway_url + "/catalog/items/1", ok) == 200
    assert call(shop.gateway_url + "/catalog/items/999", missing) == 404

    page.goto(console_url(shop, "/requests"))
    page.fill('input[name="status"]', "4xx")
    page.select_option('select[name="route"]', "/catalog/items/{id}")
    page.click('#request-filters button[type="submit"]')
    page.wait_for_url("**/requests?*status=4xx*")
    assert "status=4xx" in page.url and "route=%2Fcatalog%2Fitems%2F%7Bid%7D" in page.url
    expect(page.locator(f'tr[data-correlation-id="{missing}"]')).to_have_count(1)
    expect(page.locator(f'tr[data-correlation-id="{ok}"]')).to_have_count(0)
    statuses = page.locator("table.requests tr[data-status]").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.status))"
    )
    assert statuses and all(400 <= status < 500 for status in statuses)
    # the same filtered view by its link, fragment included
    page.goto(console_url(shop, f"/requests?correlation_id={ok}&since=5m"))
    expect(page.locator("table.requests tr[data-status]")).to_have_count(1)
    assert get(console_url(shop, "/fragments/requests?status=4xx")) == 200


def test_the_table_is_live(shop: NodeProcess, page: Page) -> None:
    page.goto(console_url(shop, "/requests"))
    page.evaluate("window.notReloaded = true")
    correlation_id = f"live-{uuid.uuid4().hex[:10]}"
    assert call(shop.gateway_url + "/catalog/items", correlation_id) == 200
    expect(page.locator(f'tr[data-correlation-id="{correlation_id}"]')).to_have_count(
        1, timeout=10_000
    )
    assert page.evaluate("window.notReloaded") is True
    # switched off, it stays as it is
    page.uncheck("#requests-live")
    paused = f"paused-{uuid.uuid4().hex[:10]}"
    assert call(shop.gateway_url + "/catalog/items", paused) == 200
    page.wait_for_timeout(4500)
    expect(page.locator(f'tr[data-correlation-id="{paused}"]')).to_have_count(0)


def test_a_bad_filter_is_a_400_with_its_reason(shop: NodeProcess, page: Page) -> None:
    response = page.goto(console_url(shop, "/requests?status=teapot"))
    assert response is not None and response.status == 400
    expect(page.locator(".filter-error")).to_contain_text("'teapot' is not a status code")
    assert get(console_url(shop, "/fragments/requests?limit=x")) == 400
