"""Batch uploads page: batches of the last 30 days with their counts, one batch, and the error-log download."""

from __future__ import annotations

import json
import re
import uuid

import httpx

from innkeeper.core.runtime import Runtime
from innkeeper.worker import run_jobs_once
from tests.batch.test_api import submit
from tests.factories.batch import guest_record, gz, ndjson, record
from tests.portal.conftest import SignInAs
from tests.support.clock import FrozenClock

Auth = tuple[str, str]


def row_of(html: str, ref: str) -> list[str]:
    """The cells (tags stripped) of the table row that links to this batch."""
    match = re.search(rf"<tr>\s*<td><a href=\"/portal/batches/{ref}\">.*?</tr>", html, flags=re.DOTALL)
    assert match is not None, f"batch {ref} not listed"
    cells = re.findall(r"<td>(.*?)</td>", match.group(0), flags=re.DOTALL)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]


async def test_a_batch_with_failures_is_listed_with_its_counts_and_its_log_downloads(
    portal: httpx.AsyncClient,
    client: httpx.AsyncClient,
    admin_auth: Auth,
    runtime: Runtime,
    clock: FrozenClock,
    signed_in_as: SignInAs,
) -> None:
    bad_ref = str(uuid.uuid4())
    body = gz(ndjson([guest_record(1), '{"ref": "broken"', record("product", {"sku": "1"}, ref=bad_ref)]))
    failed = await submit(client, admin_auth, body)
    clock.advance(minutes=5)
    good = await submit(client, admin_auth, gz(ndjson([guest_record(2)])))
    await run_jobs_once(runtime)

    await signed_in_as("MARKETER")
    page = await portal.get("/portal/batches")
    assert page.status_code == 200, page.text
    assert page.text.index(good) < page.text.index(failed)  # newest first
    cells = row_of(page.text, failed)
    assert cells[0] == failed and cells[1] == "error"
    assert cells[2] == "2026-01-15 09:00:00"
    assert cells[4:7] == ["3", "1", "2"]  # records, succeeded, failed
    assert cells[7] == f"{len(body)} bytes"
    assert cells[8] == "Download"
    good_cells = row_of(page.text, good)
    assert good_cells[1] == "success" and good_cells[4:7] == ["1", "1", "0"] and good_cells[8] == ""
    assert "2 batches" in page.text

    only_errors = await portal.get("/portal/batches", params={"status": "error"})
    assert failed in only_errors.text and good not in only_errors.text
    ignored = await portal.get("/portal/batches", params={"status": "<script>"})
    assert ignored.status_code == 200 and good in ignored.text and "<script>" not in ignored.text

    detail = await portal.get(f"/portal/batches/{failed}")
    assert detail.status_code == 200
    assert f'href="/portal/batches/{failed}/log"' in detail.text
    assert re.search(r"<th>Failed</th><td>2</td>", detail.text)
    assert "signature=" not in detail.text  # the signed API URLs stay out of the portal

    log = await portal.get(f"/portal/batches/{failed}/log")
    assert log.status_code == 200
    assert log.headers["content-type"] == "text/plain; charset=utf-8"
    assert log.headers["content-disposition"] == f'attachment; filename="batch-{failed}-errors.ndjson"'
    assert log.headers["x-content-type-options"] == "nosniff"
    assert [json.loads(line) for line in log.text.splitlines()] == [
        {"ref": "null", "code": "400", "message": "Failed to parse import line"},
        {"ref": bad_ref, "code": "400", "message": "Validation error: schema: unknown schema"},
    ]

    no_log = await portal.get(f"/portal/batches/{good}/log")
    assert no_log.status_code == 404 and "no error log" in no_log.text


async def test_unknown_batches_are_404_pages(portal: httpx.AsyncClient, signed_in_as: SignInAs) -> None:
    await signed_in_as("ENTERPRISE_ADMIN")
    for path in (
        f"/portal/batches/{uuid.uuid4()}",
        "/portal/batches/not-a-ref/log",
        f"/portal/batches/{uuid.uuid4()}/log",
    ):
        response = await portal.get(path)
        assert response.status_code == 404, path
        assert "Batch not found" in response.text and response.headers["content-type"].startswith("text/html")


async def test_only_the_last_30_days_are_listed(
    portal: httpx.AsyncClient,
    client: httpx.AsyncClient,
    admin_auth: Auth,
    clock: FrozenClock,
    signed_in_as: SignInAs,
) -> None:
    old = await submit(client, admin_auth, gz(ndjson([guest_record(1)])))
    clock.advance(days=31)
    await signed_in_as("USER_MANAGER")
    page = await portal.get("/portal/batches")
    assert old not in page.text and "No batch uploaded in the last 30 days." in page.text and "0 batches" in page.text
    # Still reachable directly (the list covers 30 days; the batch itself is kept).
    assert (await portal.get(f"/portal/batches/{old}")).status_code == 200


async def test_viewers_may_not_see_batches(portal: httpx.AsyncClient, signed_in_as: SignInAs) -> None:
    await signed_in_as("VIEWER")
    assert (await portal.get("/portal/batches")).status_code == 403
