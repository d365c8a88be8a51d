"""The data page in real Chromium: the shop's reviews table browsed, paged and queried by key;
the shop-assets bucket browsed by prefix, downloaded from and uploaded to."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
from botocore.config import Config
from playwright.sync_api import Page, expect

from stackyard.testing import NodeProcess

from .conftest import console_url, get, screenshot


def s3(node: NodeProcess) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=node.control_url,
        aws_access_key_id="stackyard",
        aws_secret_access_key="stackyard",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def add_review(node: NodeProcess, item_id: str, stars: int, text: str = "") -> None:
    review = json.dumps({"item_id": item_id, "stars": stars, "text": text}).encode()
    assert get(node.gateway_url + "/reviews", review, "POST") == 201


def test_the_reviews_table_is_listed_browsed_and_queried(shop: NodeProcess, page: Page) -> None:
    item = f"data-{uuid.uuid4().hex[:8]}"
    add_review(shop, item, 4, "solid and quiet")
    page.goto(console_url(shop, "/data"))
    expect(page).to_have_title("Data · shop · Stackyard")
    row = page.locator('table.tables tr[data-table="reviews"]')
    expect(row).to_contain_text("item_id")
    expect(row).to_contain_text("created")
    assert int(row.locator("td.item-count").inner_text().replace(",", "")) >= 1
    expect(page.locator('table.buckets tr[data-bucket="shop-assets"]')).to_be_visible()
    screenshot(page, "data")

    row.locator("a", has_text="reviews").click()
    expect(page).to_have_title("Table reviews · shop · Stackyard")
    expect(page.locator("#items")).to_contain_text(item)  # the scan's first page

    page.fill("input[name=pk]", item)
    page.click("form.table-browser button[type=submit]")
    items = page.locator("#items tbody tr")
    expect(items).to_have_count(1)
    expect(items.locator("td.key").first).to_have_text(item)
    plain = items.locator("pre.item.plain")
    expect(plain).to_contain_text('"text": "solid and quiet"')
    expect(plain).to_contain_text('"stars": 4')  # a number, not DynamoDB's {"N": "4"}
    # the typed JSON is the tooltip and what the types toggle shows
    assert '"N": "4"' in (plain.get_attribute("title") or "")
    expect(items.locator("pre.item.typed")).to_be_hidden()
    screenshot(page, "data-table")
    page.check("#show-types")
    expect(items.locator("pre.item.typed")).to_be_visible()
    expect(items.locator("pre.item.typed")).to_contain_text(f'"S": "{item}"')
    expect(plain).to_be_hidden()
    screenshot(page, "data-table-types")


def test_the_table_browser_pages_and_applies_a_sort_key_condition(
    shop: NodeProcess, page: Page
) -> None:
    item = f"page-{uuid.uuid4().hex[:8]}"
    for n in range(12):
        add_review(shop, item, 1 + n % 5, f"review {n}")
    page.goto(console_url(shop, f"/data/tables/reviews?pk={item}&limit=10"))
    items = page.locator("#items tbody tr")
    expect(items).to_have_count(10)
    expect(items.first).to_contain_text('"text": "review 0"')  # ascending sort key
    page.click("a.next-page")
    expect(items).to_have_count(2)
    expect(items.last).to_contain_text('"text": "review 11"')
    expect(page.locator("a.next-page")).to_have_count(0)

    page.goto(console_url(shop, f"/data/tables/reviews?pk={item}&sk_op=>&sk=0&order=desc"))
    expect(items).to_have_count(12)
    expect(items.first).to_contain_text('"text": "review 11"')
    page.goto(console_url(shop, f"/data/tables/reviews?pk={item}&sk_op=<&sk=0"))
    expect(page.locator("#items")).to_contain_text("No items.")
    page.goto(console_url(shop, f"/data/tables/reviews?pk={item}&sk_op=<&sk=soon"))
    expect(page.locator(".alarm-banner")).to_contain_text("does not match the key's type")
    assert get(console_url(shop, "/data/tables/no-such-table")) == 404


def test_the_bucket_browser_lists_downloads_and_uploads(shop: NodeProcess, page: Page) -> None:
    client = s3(shop)
    body = b"logo bytes " + uuid.uuid4().hex.encode()
    put = client.put_object(
        Bucket="shop-assets", Key="images/logo.txt", Body=body, ContentType="text/plain"
    )
    page.goto(console_url(shop, "/data"))
    page.locator('tr[data-bucket="shop-assets"] a').click()
    expect(page).to_have_title("Bucket shop-assets · shop · Stackyard")
    folder = page.locator('tr.folder[data-prefix="images/"]')
    expect(folder).to_be_visible()
    folder.locator("a").click()
    obj = page.locator('tr.object[data-key="images/logo.txt"]')
    expect(obj).to_contain_text("logo.txt")
    expect(obj.locator("td.size")).to_have_text(f"{len(body)} B")
    expect(obj.locator("td.etag")).to_have_text(put["ETag"].strip('"'))
    expect(page.locator("h1 a.crumb")).to_have_text("images/")
    # the download link is a presigned S3 URL on the control port
    href = obj.locator("a.download").get_attribute("href")
    assert href is not None and "X-Amz-Signature=" in href
    downloaded = page.request.get(shop.control_url + href)
    assert downloaded.status == 200 and downloaded.body() == body
    screenshot(page, "data-bucket")

    uploaded = b"uploaded from the console " + uuid.uuid4().hex.encode()
    page.fill("#upload-form input[name=key]", "uploads/")
    page.set_input_files(
        "#upload-form input[name=file]",
        {"name": "hello.txt", "mimeType": "text/plain", "buffer": uploaded},
    )
    page.click("#upload-form button[type=submit]")
    # once stored, the page shows the folder the object went to
    expect(page.locator('tr.object[data-key="uploads/hello.txt"]')).to_be_visible()
    expect(page.locator("h1 a.crumb")).to_have_text("uploads/")
    answer = client.get_object(Bucket="shop-assets", Key="uploads/hello.txt")
    assert answer["Body"].read() == uploaded
    assert answer["ContentType"] == "text/plain"
    assert get(console_url(shop, "/data/buckets/no-such-bucket")) == 404
    presign = console_url(shop, "/data/buckets/shop-assets/presign")
    assert get(presign) == 400  # no key
    assert get(presign + "?key=a&method=DELETE") == 400
    assert get(console_url(shop, "/data/buckets/no-such-bucket/presign?key=a")) == 404
