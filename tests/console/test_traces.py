"""The traces pages in real Chromium: the trace search finds the test's request, and a trace of
10,001 spans (posted through the Zipkin ingest API) is drawn lazily — its summary, first and
deepest rows, collapsing, finding and span details — with far fewer rows in the DOM."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from typing import Any

from playwright.sync_api import Page, expect

from stackyard.testing import NodeProcess

from .conftest import console_url, get, screenshot
from .test_requests import call

CHILDREN = 100  # spans under the root, each with GRANDCHILDREN spans under it
GRANDCHILDREN = 99


def big_trace(trace_id: str) -> list[dict[str, Any]]:
    """A root, 100 children and 9,900 grandchildren (10,001 spans) over ten services."""
    start = int(time.time() * 1_000_000) - 5_000_000
    spans: list[dict[str, Any]] = [
        {
            "traceId": trace_id,
            "id": "a" * 16,
            "name": "big-root",
            "kind": "SERVER",
            "timestamp": start,
            "duration": 4_000_000,
            "localEndpoint": {"serviceName": "frontend"},
            "tags": {"http.method": "GET", "correlation.id": f"big-{trace_id[:8]}"},
        }
    ]
    for child in range(CHILDREN):
        child_id = f"c{child:015x}"
        child_start = start + child * 39_000
        spans.append(
            {
                "traceId": trace_id,
                "parentId": "a" * 16,
                "id": child_id,
                "name": f"batch-{child}",
                "kind": "CLIENT",
                "timestamp": child_start,
                "duration": 38_000,
                "localEndpoint": {"serviceName": "frontend"},
                "remoteEndpoint": {"serviceName": f"svc-{child % 10}", "port": 9000 + child},
            }
        )
        for leaf in range(GRANDCHILDREN):
            span: dict[str, Any] = {
                "traceId": trace_id,
                "parentId": child_id,
                "id": f"d{child:07x}{leaf:08x}",
                "name": f"leaf-{child}-{leaf}",
                "timestamp": child_start + leaf * 380,
                "duration": 350,
                "localEndpoint": {"serviceName": f"svc-{child % 10}"},
                "tags": {"db.statement": f"SELECT {leaf}"},
                "annotations": [{"timestamp": child_start + leaf * 380 + 10, "value": "fetched"}],
            }
            if (child, leaf) == (57, 42):
                span["tags"]["error"] = "deadline exceeded"
            spans.append(span)
    return spans


def post_spans(node: NodeProcess, spans: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        node.control_url + "/api/v2/spans",
        data=json.dumps(spans).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 202


def post_log(node: NodeProcess, trace_id: str, span_id: str, message: str) -> None:
    """One OTLP/HTTP JSON log record of ``svc-7`` carrying the trace and span ids."""
    record = {
        "timeUnixNano": str(time.time_ns()),
        "severityText": "ERROR",
        "body": {"stringValue": message},
        "traceId": trace_id,
        "spanId": span_id,
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "svc-7"}}]}
    body = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [record]}]}]}
    request = urllib.request.Request(
        node.control_url + "/v1/logs",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def stored_count(node: NodeProcess, trace_id: str) -> int:
    try:
        with urllib.request.urlopen(f"{node.control_url}/api/v2/trace/{trace_id}") as response:
            return len(json.loads(response.read()))
    except urllib.error.HTTPError:
        return 0


def test_the_search_lists_the_request_trace(shop: NodeProcess, page: Page) -> None:
    correlation_id = f"tr-{uuid.uuid4().hex[:10]}"
    assert call(shop.gateway_url + "/catalog/items", correlation_id) == 200
    assert call(shop.gateway_url + "/catalog/items/9", correlation_id) == 404
    deadline = time.monotonic() + 15
    while "gateway" not in json.loads(
        urllib.request.urlopen(shop.control_url + "/api/v2/services").read()
    ):
        assert time.monotonic() < deadline, "the gateway's spans were not stored in time"
        time.sleep(0.2)

    page.goto(console_url(shop, "/traces"))
    expect(page).to_have_title("Traces · shop · Stackyard")
    page.select_option('select[name="service"]', "gateway")
    page.fill('input[name="span_name"]', "get /catalog/items")
    page.click('#trace-filters button[type="submit"]')
    page.wait_for_url("**/traces?*service=gateway*")
    row = page.locator("table.traces tr[data-trace-id]").first
    expect(row).to_contain_text("GET /catalog/items")
    expect(row).to_contain_text("catalog")
    expect(row.locator("td").nth(3)).to_have_text("2")
    row_id = row.get_attribute("data-trace-id")
    screenshot(page, "traces")
    # the list refreshes in place: a newer request's trace comes on top
    later = f"tr-{uuid.uuid4().hex[:10]}"
    assert call(shop.gateway_url + "/catalog/items", later) == 200
    newest = page.locator("table.traces tr[data-trace-id]").first
    for _ in range(20):
        page.click("#traces-refresh")
        page.wait_for_timeout(300)
        if newest.get_attribute("data-trace-id") != row_id:
            break
    assert newest.get_attribute("data-trace-id") != row_id
    # every trace listed has a span of that name; a long minimum duration leaves none
    page.goto(console_url(shop, "/traces?service=gateway&min_duration=60000"))
    expect(page.locator("table.traces tr[data-trace-id]")).to_have_count(0)
    assert get(console_url(shop, "/fragments/traces?lookback=15m")) == 200
    assert get(console_url(shop, "/traces?lookback=soon")) == 400
    assert get(console_url(shop, "/traces/not-a-trace")) == 400
    page.goto(console_url(shop, "/traces/" + "5" * 32))
    expect(page.locator("#trace-status")).to_contain_text("No trace with this id", timeout=15_000)
    expect(page.locator("#trace-logs")).to_contain_text("No log lines")


def test_a_trace_of_ten_thousand_spans_is_drawn_lazily(shop: NodeProcess, page: Page) -> None:
    trace_id = uuid.uuid4().hex
    spans = big_trace(trace_id)
    assert len(spans) == 10_001
    post_spans(shop, spans)
    deep_id = f"d{57:07x}{42:08x}"
    post_log(shop, trace_id, deep_id, f"query of {trace_id[:8]} timed out")
    deadline = time.monotonic() + 30
    while stored_count(shop, trace_id) < len(spans):
        assert time.monotonic() < deadline, "the spans were not stored in time"
        time.sleep(0.3)

    started = time.monotonic()
    page.goto(console_url(shop, f"/traces/{trace_id}"))
    root = page.locator("#trace")
    expect(root).to_have_attribute("data-loaded", "true", timeout=15_000)
    shown_in = time.monotonic() - started
    expect(page.locator('#trace-summary [data-fact="spans"]')).to_contain_text("10,001")
    expect(page.locator('#trace-summary [data-fact="depth"]')).to_contain_text("3")
    expect(page.locator('#trace-summary [data-fact="errors"]')).to_contain_text("1")
    rows = page.locator("#wf-scroll .wf-row")
    expect(rows.first).to_contain_text("big-root")
    expect(page.locator("#wf-scroll")).to_have_attribute("data-rows", "10001")
    assert rows.count() < 200, f"{rows.count()} rows in the DOM"
    screenshot(page, "trace-10k")

    # scrolled to the end: the last span is drawn, still with few rows in the DOM
    page.locator("#wf-scroll").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    last = page.locator(f'#wf-scroll .wf-row[data-span-id="d{99:07x}{98:08x}"]')
    expect(last).to_be_visible()
    expect(last).to_contain_text("leaf-99-98")
    assert rows.count() < 200

    # find the deep error span: its row is revealed and its details shown
    page.fill("#wf-find", "leaf-57-42")
    page.press("#wf-find", "Enter")
    deep = page.locator(f'#wf-scroll .wf-row[data-span-id="d{57:07x}{42:08x}"]')
    expect(deep).to_be_visible()
    expect(deep).to_have_class("wf-row error selected")
    detail = page.locator("#span-detail")
    expect(detail.locator(".span-error")).to_contain_text("deadline exceeded")
    expect(detail.locator("table.span-tags")).to_contain_text("SELECT 42")
    expect(detail.locator("table.span-annotations")).to_contain_text("fetched")
    expect(detail.locator("table.span-fields")).to_contain_text(f"c{57:015x}")
    screenshot(page, "trace-10k-deep")
    deep.locator(".wf-name").click()  # a click gives the waterfall the focus
    page.keyboard.press("ArrowDown")  # and the arrow keys select the next span
    expect(page.locator("#span-detail")).to_have_attribute("data-span-id", f"d{57:07x}{43:08x}")

    # collapsing every subtree leaves the root and its children; a toggle opens one again
    page.click('[data-action="collapse"]')
    expect(page.locator("#wf-scroll")).to_have_attribute("data-rows", str(1 + CHILDREN))
    erring = page.locator(f'#wf-scroll .wf-row[data-span-id="c{57:015x}"]')
    page.fill("#wf-find", "batch-57")
    page.press("#wf-find", "Enter")
    expect(erring).to_contain_text(f"(+{GRANDCHILDREN}, 1 error)")
    page.locator("#wf-scroll").evaluate("el => { el.scrollTop = 0; }")
    batch = page.locator(f'#wf-scroll .wf-row[data-span-id="c{0:015x}"]')
    expect(batch).to_contain_text(f"(+{GRANDCHILDREN})")
    batch.locator("[data-toggle]").click()
    expect(page.locator("#wf-scroll")).to_have_attribute("data-rows", str(1 + CHILDREN + 99))
    expect(page.locator(f'#wf-scroll .wf-row[data-span-id="d{0:07x}{0:08x}"]')).to_be_visible()
    # the trace's log line (by trace id) is beside it, and selects its span
    log_line = page.locator("#trace-logs li.log-line")
    expect(log_line).to_have_count(1)
    expect(log_line).to_contain_text(f"query of {trace_id[:8]} timed out")
    log_line.click()
    expect(page.locator("#span-detail")).to_have_attribute("data-span-id", deep_id)
    expect(page.locator(f'#wf-scroll .wf-row[data-span-id="{deep_id}"]')).to_be_visible()
    # responsive: the page showed 10k spans in a few seconds even on a busy test machine
    assert shown_in < 10, f"the trace took {shown_in:.1f} s to show"
