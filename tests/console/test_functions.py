"""The functions pages in real Chromium: the shop's ``reviews`` counted live, the test-invoke
form answering with the function's result and log tail, a dead letter redriven."""

from __future__ import annotations

import json
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from stackyard.testing import NodeProcess, wait_until

from .conftest import console_url, get, screenshot

FLAKY_HANDLER = """
import json, os, pathlib

def main(event, context):
    if pathlib.Path(os.environ["FAIL_FLAG"]).exists():
        raise RuntimeError("flaky fails on purpose")
    pathlib.Path(os.environ["DONE_FILE"]).write_text(json.dumps(event))
    return {"ok": True}
"""


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, Path]]:
    """A stack of one function that fails while ``<root>/fail`` exists, with no async retries."""
    root = tmp_path_factory.mktemp("flaky")
    (root / "handler.py").write_text(FLAKY_HANDLER)
    (root / "fail").write_text("yes")
    (root / "stackyard.yml").write_text(
        textwrap.dedent(
            f"""\
            name: flaky
            functions:
              flaky:
                handler: handler.main
                retries: 0
                env:
                  FAIL_FLAG: {root / "fail"}
                  DONE_FILE: {root / "done.json"}
            """
        )
    )
    with NodeProcess(root, data_dir=root / "data") as node:
        node.wait_ready(60)
        yield node, root


def _invocations(page: Page) -> int:
    text = page.locator('tr[data-function="reviews"] td.invocations').inner_text()
    return int(text.replace(",", ""))


def test_the_functions_page_counts_reviews_invocations_live(shop: NodeProcess, page: Page) -> None:
    page.goto(console_url(shop, "/functions"))
    expect(page).to_have_title("Functions · shop · Stackyard")
    row = page.locator('tr[data-function="reviews"]')
    expect(row).to_be_visible()
    expect(row.locator("td.workers")).not_to_have_text("0")  # a warm worker is up
    before = _invocations(page)
    for stars in (3, 4, 5):
        review = json.dumps({"item_id": "7", "stars": stars}).encode()
        assert get(shop.gateway_url + "/reviews", review, "POST") == 201
    # the table refreshes itself (htmx, every 3 s) with the new count
    expect(row.locator("td.invocations")).to_have_text(str(before + 3), timeout=10_000)
    screenshot(page, "functions")

    row.locator("a", has_text="reviews").click()
    expect(page).to_have_title("Function reviews · shop · Stackyard")
    config = page.locator(".function-config")
    expect(config).to_contain_text("reviews/handler.main")
    expect(config).to_contain_text("POST /reviews")
    expect(page.locator("table.function-stats td.invocations")).to_have_text(str(before + 3))
    # the function's own log lines, from the central log search
    expect(page.locator("table.function-logs")).to_contain_text("review added for item 7")
    assert get(console_url(shop, "/functions/no-such-function")) == 404
    assert get(console_url(shop, "/fragments/functions/no-such-function")) == 404


def test_the_test_invoke_form_shows_the_result_and_the_log_tail(
    shop: NodeProcess, page: Page
) -> None:
    review = json.dumps({"item_id": "1", "stars": 5, "text": "sturdy"}).encode()
    assert get(shop.gateway_url + "/reviews", review, "POST") == 201
    page.goto(console_url(shop, "/functions/reviews"))
    event = {
        "version": "2.0",
        "rawPath": "/reviews",
        "queryStringParameters": {"item_id": "1"},
        "requestContext": {"http": {"method": "GET", "path": "/reviews"}},
    }
    page.fill("#invoke-event", json.dumps(event))
    page.click("#invoke-form button[type=submit]")
    payload = page.locator("#invoke-payload")
    expect(payload).to_contain_text('"statusCode": 200')
    expect(payload).to_contain_text("sturdy")  # the body lists item 1's reviews
    expect(page.locator("#invoke-error")).to_be_hidden()
    expect(page.locator("#invoke-log")).to_contain_text("REPORT RequestId")
    expect(page.locator("#invoke-status")).to_contain_text("HTTP 200")
    screenshot(page, "function")

    page.fill("#invoke-event", "{}")  # no requestContext: the handler raises KeyError
    page.click("#invoke-form button[type=submit]")
    expect(page.locator("#invoke-error")).to_have_text("function error: Unhandled")
    expect(payload).to_contain_text("KeyError")
    expect(payload).to_contain_text("requestContext")


def test_a_dead_letter_is_listed_and_redriven(flaky: tuple[NodeProcess, Path], page: Page) -> None:
    node, root = flaky
    request = urllib.request.Request(
        node.control_url + "/2015-03-31/functions/flaky/invocations",
        data=json.dumps({"order": 42}).encode(),
        headers={"X-Amz-Invocation-Type": "Event"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202

    page.goto(console_url(node, "/functions/flaky"))
    letter = page.locator("table.dead-letters tbody tr")
    expect(letter).to_have_count(1, timeout=15_000)  # the page polls until it is buried
    expect(letter).to_contain_text("flaky fails on purpose")
    expect(letter).to_contain_text('{"order": 42}')
    screenshot(page, "function-dead-letter")

    (root / "fail").unlink()  # the function works again: the redriven event succeeds
    letter.locator("button[data-redrive]").click()
    expect(letter.locator("button[data-redrive]")).to_have_text("queued")
    wait_until(lambda: (root / "done.json").exists(), 15, what="the redriven event")
    assert json.loads((root / "done.json").read_text()) == {"order": 42}
    expect(page.locator("table.dead-letters")).to_have_count(0, timeout=10_000)
