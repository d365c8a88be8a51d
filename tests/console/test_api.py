"""The API page in real Chromium: the shop's routes with their policies, the partners usage
plan, and an API key created on the page that then opens /partner/orders (and is revoked)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

from playwright.sync_api import Page, expect

from stackyard.testing import NodeProcess

from .conftest import console_url, get, screenshot


def partner_orders(node: NodeProcess, key: str) -> int:
    request = urllib.request.Request(
        node.gateway_url + "/partner/orders", headers={"x-api-key": key}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_the_api_page_lists_routes_stages_and_plans(shop: NodeProcess, page: Page) -> None:
    page.goto(console_url(shop, "/api"))
    expect(page).to_have_title("API · shop · Stackyard")
    routes = page.locator("table.routes tbody tr")
    for path in ("/catalog/items", "/catalog/items/{id}", "/orders", "/web/{proxy+}", "/reviews"):
        expect(page.locator(f'table.routes tr[data-path="{path}"]').first).to_be_visible()
    assert routes.count() >= 8
    partner = page.locator('table.routes tr[data-path="/partner/orders"]')
    expect(partner.locator("td.auth")).to_contain_text("API key")
    expect(partner).to_contain_text("body schema")
    expect(partner.locator("td.target")).to_contain_text("orders")
    expect(partner.locator("td.target")).to_contain_text("strips /partner")
    reviews = page.locator('table.routes tr[data-path="/reviews"]')
    expect(reviews.first).to_contain_text("function")
    expect(reviews.locator("td.target a").first).to_have_attribute(
        "href", "/_console/functions/reviews"
    )
    plan = page.locator('table.plans tr[data-plan="partners"]')
    expect(plan).to_contain_text("order placement for partners")
    expect(plan).to_contain_text("20/s, burst 40")
    expect(plan).to_contain_text("10,000 per day")
    assert plan.locator("td.active-keys").inner_text().isdigit()
    expect(page.locator('table.stages tr[data-stage="dev"]')).to_contain_text("this node")
    docs = page.locator("a.docs").get_attribute("href")
    assert docs == shop.gateway_url + "/_docs"
    assert get(docs) == 200
    export = page.request.get(shop.control_url + "/_stackyard/api/openapi.json")
    assert export.status == 200 and "/partner/orders" in export.json()["paths"]
    screenshot(page, "api")


def test_a_key_created_on_the_page_opens_partner_orders_until_revoked(
    shop: NodeProcess, page: Page
) -> None:
    name = f"acme-{uuid.uuid4().hex[:6]}"
    assert partner_orders(shop, "not-a-key") == 403
    page.goto(console_url(shop, "/api"))
    page.fill("#key-form input[name=name]", name)
    page.select_option("#key-form select[name=plan]", "partners")
    page.click("#key-form button[type=submit]")
    expect(page.locator("#new-key")).to_be_visible()
    expect(page.locator("#new-key-name")).to_have_text(name)
    value = page.locator("#new-key-value").inner_text()
    row = page.locator(f'table.keys tr[data-key="{name}"]')
    expect(row).to_contain_text("partners")
    expect(row.locator("td.used")).to_contain_text("0 / 10,000 per day")

    assert partner_orders(shop, value) == 200
    assert partner_orders(shop, value) == 200
    expect(row.locator("td.used")).to_contain_text("2 / 10,000 per day", timeout=10_000)
    screenshot(page, "api-key")

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button[data-revoke]").click()
    expect(row.locator("td.revoked-at .badge")).to_be_visible()
    assert partner_orders(shop, value) == 403
    listed = json.loads(urllib.request.urlopen(shop.control_url + "/_stackyard/api/keys").read())
    assert any(key["name"] == name and key["revoked"] for key in listed["keys"])
