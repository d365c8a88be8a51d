"""The alarms page in real Chromium against the shop: ``catalog-unavailable`` with its state,
made to fire (both catalog instances stopped, so the gateway answers 503) and seen going to
ALARM, then back to OK, with its history."""

from __future__ import annotations

import os
import signal
import time

from playwright.sync_api import Page, expect

from stackyard.testing import NodeProcess, wait_until

from .conftest import console_url, get, screenshot

ALARM = "catalog-unavailable"


def test_the_alarms_page_shows_an_alarm_fire_and_clear(shop: NodeProcess, page: Page) -> None:
    page.goto(console_url(shop, "/alarms"))
    expect(page).to_have_title("Alarms · shop · Stackyard")
    summary = page.locator(f'table.alarms tr[data-alarm="{ALARM}"]')
    section = page.locator(f'section.alarm[data-alarm="{ALARM}"]')
    state = section.locator(".alarm-state")
    # notBreaching: with no 503s the first evaluation (within a 10 s period) says OK
    expect(state).to_have_attribute("data-state", "OK", timeout=30_000)
    expect(summary.locator(".badge")).to_have_text("OK")
    expect(section).to_contain_text(
        "sum of gateway_requests_total{route=/catalog/items,status=503} > 0 in 1 of 1"
    )
    expect(section.locator(".chart[data-metric=gateway_requests_total] canvas")).to_have_count(1)
    screenshot(page, "alarms")

    pids = [i["pid"] for i in shop.instances("catalog")]
    assert len(pids) == 2
    for pid in pids:
        os.killpg(pid, signal.SIGSTOP)  # both stop answering: no passing endpoint left
    try:
        wait_until(
            lambda: (
                next(s for s in shop.status()["services"] if s["name"] == "catalog")["passing"] == 0
            ),
            20,
            interval=0.2,
            what="both catalog instances to fail their health checks",
        )
        wait_until(
            lambda: get(shop.gateway_url + "/catalog/items") == 503,
            20,
            interval=0.2,
            what="the gateway to answer 503 with no passing catalog instance",
        )
        ends = time.monotonic() + 3
        while time.monotonic() < ends:
            assert get(shop.gateway_url + "/catalog/items") == 503
            time.sleep(0.1)
        expect(state).to_have_attribute("data-state", "ALARM", timeout=30_000)
        expect(summary).to_have_attribute("data-state", "ALARM")
        expect(section.locator(".alarm-reason")).to_contain_text("Threshold crossed")
        expect(section.locator('tr.change[data-old="OK"][data-new="ALARM"]')).to_have_count(1)
        screenshot(page, "alarms-firing")
    finally:
        for pid in pids:
            os.killpg(pid, signal.SIGCONT)

    wait_until(
        lambda: get(shop.gateway_url + "/catalog/items") == 200, 20, what="catalog to answer"
    )
    expect(state).to_have_attribute("data-state", "OK", timeout=40_000)
    history = section.locator("table.alarm-history tr.change")
    expect(history.first).to_have_attribute("data-new", "OK")
    expect(history.nth(1)).to_have_attribute("data-new", "ALARM")
    expect(summary.locator(".badge")).to_have_text("OK")
    screenshot(page, "alarms-cleared")


def test_alarms_in_alarm_come_first_and_fragments_answer(shop: NodeProcess) -> None:
    assert get(console_url(shop, "/fragments/alarms")) == 200
    assert get(console_url(shop, f"/fragments/alarms/{ALARM}")) == 200
    assert get(console_url(shop, "/fragments/alarms/nope")) == 404
