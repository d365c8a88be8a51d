"""The overview page in real Chromium: the shop's map with every service healthy, live."""

from __future__ import annotations

import json
import os
import signal

from playwright.sync_api import Page, expect

from stackyard.testing import NodeProcess

from .conftest import console_url, get, screenshot


def test_overview_shows_the_stack_healthy_with_its_traffic(shop: NodeProcess, page: Page) -> None:
    for _ in range(5):
        assert get(shop.gateway_url + "/catalog/items") == 200
    review = json.dumps({"item_id": "1", "stars": 4}).encode()
    assert get(shop.gateway_url + "/reviews", review, "POST") == 201

    page.goto(console_url(shop))
    expect(page).to_have_title("Overview · shop · Stackyard")
    for name in ("catalog", "orders", "web"):
        expect(page.locator(f'svg.map g.node.service[data-id="{name}"]')).to_have_attribute(
            "data-state", "passing"
        )
    expect(page.locator('svg.map g.node.function[data-id="reviews"]')).to_be_visible()
    expect(page.locator('svg.map g.node.table[data-id="table:reviews"]')).to_be_visible()
    expect(page.locator('svg.map g.node.bucket[data-id="bucket:shop-assets"]')).to_be_visible()
    # the calls to catalog were traced: its edge carries a rate (the map refreshes itself)
    edge = page.locator('svg.map path.edge[data-source="gateway"][data-target="catalog"]')
    expect(edge).to_have_count(1)
    expect(page.locator("svg.map text.edge-label").first).to_contain_text("req/s", timeout=15_000)
    screenshot(page, "overview")


def test_overview_shows_a_hung_instance_critical_then_recovered(
    shop: NodeProcess, page: Page
) -> None:
    page.goto(console_url(shop))
    web = page.locator('svg.map g.node.service[data-id="web"]')
    expect(web).to_have_attribute("data-state", "passing")
    (instance,) = shop.instances("web")
    os.killpg(instance["pid"], signal.SIGSTOP)  # it stops answering its health checks
    try:
        expect(web).to_have_attribute("data-state", "critical", timeout=15_000)
        screenshot(page, "overview-instance-down")
    finally:
        os.killpg(instance["pid"], signal.SIGCONT)
    expect(web).to_have_attribute("data-state", "passing", timeout=30_000)


def test_the_map_fragment_is_served_alone_for_polling(shop: NodeProcess) -> None:
    assert get(console_url(shop, "/fragments/overview")) == 200
    assert get(console_url(shop, "/no-such-page")) == 404
