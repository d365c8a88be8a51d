"""The services pages in real Chromium against the shop: the list healthy; one service's
instances with health history, a killed instance seen down and recovered, the restart button,
scaling, traffic charts and live logs."""

from __future__ import annotations

import os
import signal
import time

from playwright.sync_api import Page, expect

from stackyard.testing import NodeProcess, wait_until

from .conftest import console_url, get, screenshot


def row(page: Page, instance_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f'table.instances tr[data-instance="{instance_id}"]')


def pid_of(shop: NodeProcess, instance_id: str) -> int:
    service = instance_id.rsplit("-", 1)[0]
    (found,) = [i for i in shop.instances(service) if i["instance_id"] == instance_id]
    return int(found["pid"])


def test_the_services_page_lists_the_shop_healthy(shop: NodeProcess, page: Page) -> None:
    page.goto(console_url(shop, "/services"))
    expect(page).to_have_title("Services · shop · Stackyard")
    for name, count in (("catalog", "2/2"), ("orders", "2/2"), ("web", "1/1")):
        line = page.locator(f'table.services tr[data-service="{name}"]')
        expect(line.locator(".passing-count")).to_have_text(count)
        expect(line.locator(".passing-count")).to_have_class("badge passing-count passing")
    catalog = page.locator('table.services tr[data-service="catalog"]')
    expect(catalog.locator('[data-instance="catalog-2"]')).to_have_attribute(
        "data-health", "passing"
    )
    expect(catalog).to_contain_text("/catalog/items/{id}")
    screenshot(page, "services")
    catalog.get_by_role("link", name="catalog").click()
    expect(page).to_have_url(console_url(shop, "/services/catalog"))
    assert get(console_url(shop, "/services/nope")) == 404
    assert get(console_url(shop, "/fragments/services")) == 200
    assert get(console_url(shop, "/fragments/services/catalog/instances")) == 200
    assert get(console_url(shop, "/fragments/services/nope/logs")) == 404


def test_a_killed_instance_is_seen_down_then_recovered_with_its_history(
    shop: NodeProcess, page: Page
) -> None:
    page.goto(console_url(shop, "/services/catalog"))
    victim = row(page, "catalog-1")
    expect(victim).to_have_attribute("data-health", "passing")
    old_pid = pid_of(shop, "catalog-1")
    restarts = int(victim.get_attribute("data-restarts") or "0")
    os.killpg(old_pid, signal.SIGKILL)  # the whole group: the service and anything it started
    seen: set[tuple[str, str]] = set()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # ask the fragment again and again: the outage is short
        page.evaluate("htmx.trigger('#service-instances', 'refresh')")
        page.wait_for_timeout(150)
        health = victim.get_attribute("data-health") or ""
        state = (health, victim.get_attribute("data-state") or "")
        seen.add(state)
        if state != ("passing", "running"):
            screenshot(page, "service-instance-down")
            break
    assert any(state != ("passing", "running") for state in seen), seen
    # recovered: a new process, one more restart, passing again
    expect(victim).to_have_attribute("data-health", "passing", timeout=20_000)
    expect(victim).not_to_have_attribute("data-pid", str(old_pid))
    expect(victim).to_have_attribute("data-restarts", str(restarts + 1))
    history = page.locator('.health-history[data-instance="catalog-1"]')
    expect(history.locator('tr.transition[data-to="deregistered"]')).to_have_count(1)
    expect(history.locator("tr.transition").first).to_have_attribute("data-to", "passing")
    screenshot(page, "service-instance-recovered")


def test_the_restart_button_restarts_an_instance(shop: NodeProcess, page: Page) -> None:
    page.goto(console_url(shop, "/services/catalog"))
    target = row(page, "catalog-2")
    expect(target).to_have_attribute("data-health", "passing")
    old_pid = pid_of(shop, "catalog-2")
    target.get_by_role("button", name="Restart").click()
    status = page.locator("#action-status")
    expect(status).to_contain_text(f"catalog-2 restarted: pid {old_pid} → ", timeout=20_000)
    expect(status).to_have_class("action-status ok")
    new_pid = pid_of(shop, "catalog-2")
    assert new_pid != old_pid
    expect(target).to_have_attribute("data-pid", str(new_pid), timeout=10_000)
    expect(target).to_have_attribute("data-health", "passing", timeout=20_000)


def test_scaling_catalog_to_three_and_back(shop: NodeProcess, page: Page) -> None:
    page.goto(console_url(shop, "/services/catalog"))
    passing = page.locator("#passing-count")
    expect(passing).to_have_attribute("data-passing", "2", timeout=20_000)
    page.locator("#scale-form input[name=replicas]").fill("3")
    page.locator("#scale-form").get_by_role("button", name="Scale").click()
    status = page.locator("#action-status")
    expect(status).to_contain_text("catalog scaled to 3 replicas: catalog-1, catalog-2, catalog-3")
    expect(page.locator("table.instances tr[data-instance]")).to_have_count(3)
    expect(passing).to_have_attribute("data-passing", "3", timeout=20_000)
    expect(passing).to_have_text("3/3 passing")
    expect(row(page, "catalog-3")).to_have_attribute("data-health", "passing")
    screenshot(page, "service-scaled")

    page.locator("#scale-form input[name=replicas]").fill("2")
    page.locator("#scale-form").get_by_role("button", name="Scale").click()
    expect(status).to_contain_text("catalog scaled to 2 replicas: catalog-1, catalog-2")
    expect(page.locator("table.instances tr[data-instance]")).to_have_count(2)
    expect(passing).to_have_text("2/2 passing", timeout=20_000)
    assert [i["instance_id"] for i in shop.instances("catalog")] == ["catalog-1", "catalog-2"]
    # a bad count is refused by the API and the page says why
    page.locator("#scale-form input[name=replicas]").evaluate("el => el.removeAttribute('max')")
    page.locator("#scale-form input[name=replicas]").fill("65")
    page.locator("#scale-form").get_by_role("button", name="Scale").click()
    expect(status).to_contain_text("scaling catalog failed: replicas must be between 0 and 64")
    expect(status).to_have_class("action-status bad")


def test_the_service_page_charts_its_traffic_and_tails_its_logs(
    shop: NodeProcess, page: Page
) -> None:
    page.goto(console_url(shop, "/services/catalog"))
    logs = page.locator("#service-logs table.service-logs")
    expect(logs).to_contain_text("catalog-1", timeout=10_000)
    for _ in range(20):
        assert get(shop.gateway_url + "/catalog/items") == 200

    def counted() -> bool:
        page.evaluate("stackyardServices.drawRates()")
        page.wait_for_timeout(500)
        total = page.locator('.svc-chart[data-kind="rps"]').get_attribute("data-total")
        return total is not None and float(total) >= 20

    # the rate chart refreshes every 10 s; metrics reach the store within a flush interval
    wait_until(counted, 45, interval=0.5, what="the rps chart to count the requests")
    expect(page.locator('.svc-chart[data-kind="rps"] canvas')).to_have_count(1)
    expect(page.locator(".chart[data-stat=p99] canvas")).to_have_count(1)
    screenshot(page, "service")
