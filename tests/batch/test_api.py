"""Batch API through HTTP (spec cdp.md §10): every status and error path."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.config import Settings
from innkeeper.core.runtime import Runtime
from innkeeper.guests.models import Guest, GuestExtension, GuestIdentifier
from innkeeper.orders.models import Order, OrderContact, OrderItem
from innkeeper.sessions.models import Event
from innkeeper.tenant import service as tenant
from innkeeper.worker import run_jobs_once
from tests.batch.conftest import MAX_SIZE
from tests.conftest import CLIENT_KEY
from tests.factories.batch import guest_record, gz, md5_b64, md5_hex, ndjson, order_record, record
from tests.support.clock import FrozenClock

Auth = tuple[str, str]


async def allocate(client: httpx.AsyncClient, auth: Auth, body: bytes, ref: str | None = None) -> httpx.Response:
    ref = ref or str(uuid.uuid4())
    return await client.put(f"/v2/batches/{ref}", json={"checksum": md5_hex(body), "size": len(body)}, auth=auth)


def upload_path(response: httpx.Response) -> str:
    href = response.json()["location"]["href"]
    parts = urlsplit(href)
    return f"{parts.path}?{parts.query}"


async def upload(
    client: httpx.AsyncClient, path: str, body: bytes, *, headers: dict[str, str] | None = None
) -> httpx.Response:
    base = {
        "Content-Md5": md5_b64(body),
        "x-amz-server-side-encryption": "AES256",
        "Content-Type": "application/gzip",
    }
    return await client.put(path, content=body, headers={**base, **(headers or {})})


async def submit(client: httpx.AsyncClient, auth: Auth, body: bytes) -> str:
    allocated = await allocate(client, auth, body)
    assert allocated.status_code == 201, allocated.text
    uploaded = await upload(client, upload_path(allocated), body)
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.content == b""
    ref: str = allocated.json()["ref"]
    return ref


async def status(client: httpx.AsyncClient, auth: Auth, ref: str, *, inspect: bool = False) -> dict[str, Any]:
    response = await client.get(f"/v2/batches/{'inspect/' if inspect else ''}{ref}", auth=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def count(db: AsyncSession, model: Any) -> int:
    return int((await rows(db, select(func.count()).select_from(model)))[0][0])


async def rows(db: AsyncSession, stmt: Any) -> list[tuple[Any, ...]]:
    """Plain column tuples; the read transaction ends at once (SQLite has one connection)."""
    try:
        return [tuple(row) for row in (await db.execute(stmt)).all()]
    finally:
        await db.rollback()


async def error_log(client: httpx.AsyncClient, href: str) -> list[dict[str, str]]:
    parts = urlsplit(href)
    response = await client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/gzip"
    return [json.loads(line) for line in gzip.decompress(response.content).decode().splitlines()]


async def test_allocate_returns_201_with_signed_location(
    client: httpx.AsyncClient, admin_auth: Auth, clock: FrozenClock
) -> None:
    ref = "12af3453-62da-4b31-b646-631b7b5f3009"
    response = await client.put(
        f"/v2/batches/{ref}", json={"checksum": "B1D600DBF7463924E24647E626CD7C1E", "size": 227}, auth=admin_auth
    )
    assert response.status_code == 201
    body = response.json()
    assert list(body) == ["href", "ref", "checksum", "size", "location", "status", "createdAt", "modifiedAt"]
    assert body["href"] == f"http://testserver/v2/batches/{ref}"
    assert body["checksum"] == "b1d600dbf7463924e24647e626cd7c1e"  # normalised to lowercase
    assert body["status"] == {"code": "uploading"}
    assert body["location"]["expiry"] == "2026-01-15T10:00:00.000Z"  # one hour
    assert body["location"]["href"].startswith(f"http://testserver/v2/batch-files/{ref}?expires=")
    assert body["createdAt"] == body["modifiedAt"] == "2026-01-15T09:00:00.000Z"


async def test_repeated_allocation_refreshes_location_and_conflicts_otherwise(
    client: httpx.AsyncClient, admin_auth: Auth, clock: FrozenClock
) -> None:
    body = gz(ndjson([guest_record(1)]))
    ref = str(uuid.uuid4())
    first = await allocate(client, admin_auth, body, ref)
    clock.advance(minutes=30)
    again = await allocate(client, admin_auth, body, ref)
    assert again.status_code == 200
    assert again.json()["location"]["expiry"] == "2026-01-15T10:30:00.000Z"
    assert again.json()["location"]["href"] != first.json()["location"]["href"]
    # The replaced location no longer works.
    assert (await upload(client, upload_path(first), body)).status_code == 403
    other = await client.put(f"/v2/batches/{ref}", json={"checksum": "0" * 32, "size": len(body)}, auth=admin_auth)
    assert other.status_code == 409
    assert other.json()["code"] == 409
    assert (await upload(client, upload_path(again), body)).status_code == 200
    # Once uploaded, even an identical allocation is a conflict.
    assert (await allocate(client, admin_auth, body, ref)).status_code == 409


async def test_allocate_validation(client: httpx.AsyncClient, admin_auth: Auth, settings: Settings) -> None:
    ref = str(uuid.uuid4())
    cases: list[tuple[str, Any]] = [
        ("not-a-uuid", {"checksum": "a" * 32, "size": 10}),
        (ref, {"checksum": "xyz", "size": 10}),
        (ref, {"checksum": "a" * 32, "size": 0}),
        (ref, {"checksum": "a" * 32, "size": settings.batch_max_size + 1}),
        (ref, {"checksum": "a" * 32, "size": "10"}),
        (ref, {"checksum": "a" * 32}),
        (ref, {"checksum": "a" * 32, "size": 10, "extra": 1}),
    ]
    for batch_ref, payload in cases:
        response = await client.put(f"/v2/batches/{batch_ref}", json=payload, auth=admin_auth)
        assert response.status_code == 400, (payload, response.text)
        assert response.json()["code"] == 400
        assert response.json()["developerMessage"]
    broken = await client.put(
        f"/v2/batches/{ref}", content=b"{", headers={"Content-Type": "application/json"}, auth=admin_auth
    )
    assert broken.status_code == 400
    text = await client.put(f"/v2/batches/{ref}", content=b"x", headers={"Content-Type": "text/plain"}, auth=admin_auth)
    assert text.status_code == 415


async def test_allocation_over_50_mb_is_refused_by_default(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    assert Settings().batch_max_size == 52_428_800


async def test_auth(client: httpx.AsyncClient, runtime: Runtime, db: AsyncSession) -> None:
    ref = str(uuid.uuid4())
    payload = {"checksum": "a" * 32, "size": 10}
    assert (await client.put(f"/v2/batches/{ref}", json=payload)).status_code == 401
    assert (await client.put(f"/v2/batches/{ref}", json=payload, auth=(CLIENT_KEY, "wrong"))).status_code == 401
    assert (await client.get(f"/v2/batches/{ref}")).status_code == 401
    assert (await client.get("/v2/batches/inspect")).status_code == 401
    _, read_only = await tenant.create_token(db, label="reader", scope="ro", clock=runtime.clock)
    await db.commit()
    denied = await client.put(f"/v2/batches/{ref}", json=payload, auth=(CLIENT_KEY, read_only))
    assert denied.status_code == 403
    assert denied.json()["status"] == "FORBIDDEN"
    assert (await client.get(f"/v2/batches/{ref}", auth=(CLIENT_KEY, read_only))).status_code == 404


async def test_unknown_batch_is_404(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    for path in (f"/v2/batches/{uuid.uuid4()}", f"/v2/batches/inspect/{uuid.uuid4()}", "/v2/batches/nope"):
        response = await client.get(path, auth=admin_auth)
        assert response.status_code == 404
        assert response.json()["status"] == 404


async def test_upload_and_import(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession, settings: Settings
) -> None:
    body = gz(ndjson([guest_record(1), guest_record(2), order_record(1, guest=1)]))
    ref = await submit(client, admin_auth, body)
    # Queued: only the inspect endpoints show file_uploaded.
    assert (await status(client, admin_auth, ref))["status"] == {"code": "processing"}
    assert (await status(client, admin_auth, ref, inspect=True))["status"] == {"code": "file_uploaded"}
    assert await count(db, Guest) == 0
    await run_jobs_once(runtime)
    done = await status(client, admin_auth, ref)
    assert done["status"] == {"code": "success", "recordsTotal": 3, "recordsSucceeded": 3, "recordsFailed": 0}
    assert await count(db, Guest) == 2
    assert await count(db, Order) == 1
    assert await count(db, OrderItem) == 1
    assert await count(db, OrderContact) == 1
    order_guest = await rows(db, select(Order.guest_ref))
    owner = await rows(db, select(GuestIdentifier.guest_ref).where(GuestIdentifier.value == "CRM-1"))
    assert order_guest == owner
    # The imported file is removed once its import finished.
    assert not list((Path(settings.data_dir) / "batches").glob("*.gz"))
    # Re-running the job does nothing.
    await run_jobs_once(runtime)
    assert await count(db, Guest) == 2


async def test_upload_refused_with_403_when_forged_or_expired(
    client: httpx.AsyncClient, admin_auth: Auth, clock: FrozenClock
) -> None:
    body = gz(ndjson([guest_record(1)]))
    allocated = await allocate(client, admin_auth, body)
    path = upload_path(allocated)
    ref = allocated.json()["ref"]
    forged = path[:-4] + ("0000" if not path.endswith("0000") else "1111")
    for bad in (forged, f"/v2/batch-files/{ref}", f"/v2/batch-files/{uuid.uuid4()}?expires=1&signature=ab"):
        response = await upload(client, bad, body)
        assert response.status_code == 403, bad
        assert response.json()["status"] == "FORBIDDEN"
    clock.advance(minutes=61)
    assert (await upload(client, path, body)).status_code == 403
    assert (await status(client, admin_auth, ref))["status"] == {"code": "uploading"}


async def test_upload_over_the_limit_is_413_and_not_stored(
    client: httpx.AsyncClient, admin_auth: Auth, settings: Settings
) -> None:
    body = b"\x1f\x8b" + b"x" * MAX_SIZE
    ref = str(uuid.uuid4())
    allocated = await client.put(f"/v2/batches/{ref}", json={"checksum": md5_hex(body), "size": 10}, auth=admin_auth)
    path = upload_path(allocated)

    async def chunks() -> Any:  # no Content-Length: the server must stop reading at the limit
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    streamed = await client.put(path, content=chunks())
    assert streamed.status_code == 413
    assert streamed.json()["code"] == 413
    declared = await upload(client, path, body)
    assert declared.status_code == 413
    assert (await status(client, admin_auth, ref))["status"] == {"code": "uploading"}
    assert not [p for p in (Path(settings.data_dir) / "batches").iterdir()]


async def test_size_mismatch_is_400_and_corrupted(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession
) -> None:
    body = gz(ndjson([guest_record(1)]))
    ref = str(uuid.uuid4())
    allocated = await client.put(
        f"/v2/batches/{ref}", json={"checksum": md5_hex(body), "size": len(body) + 1}, auth=admin_auth
    )
    response = await upload(client, upload_path(allocated), body)
    assert response.status_code == 400
    assert response.json()["developerMessage"].startswith("size:")
    assert (await status(client, admin_auth, ref))["status"] == {"code": "corrupted"}
    await run_jobs_once(runtime)
    assert await count(db, Guest) == 0


async def test_checksum_mismatch_is_409_and_corrupted_then_reupload_works(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession
) -> None:
    body = gz(ndjson([guest_record(1)]))
    tampered = body[:-1] + bytes([body[-1] ^ 1])
    allocated = await allocate(client, admin_auth, body)
    ref = allocated.json()["ref"]
    path = upload_path(allocated)
    # Same size, other bytes: the MD5 differs from the allocated checksum.
    response = await upload(client, path, tampered)
    assert response.status_code == 409
    assert (await status(client, admin_auth, ref))["status"] == {"code": "corrupted"}
    # The right bytes with a wrong Content-Md5 header: 409 too.
    wrong_header = await upload(client, path, body, headers={"Content-Md5": md5_b64(b"other")})
    assert wrong_header.status_code == 409
    assert (await upload(client, path, body, headers={"Content-Md5": "***"})).status_code == 409
    await run_jobs_once(runtime)
    assert await count(db, Guest) == 0
    # A corrupted batch may be uploaded again to its unexpired location.
    assert (await upload(client, path, body)).status_code == 200
    await run_jobs_once(runtime)
    assert (await status(client, admin_auth, ref))["status"]["code"] == "success"
    assert await count(db, Guest) == 1


async def test_upload_without_content_md5_and_with_bad_encryption_header(
    client: httpx.AsyncClient, admin_auth: Auth
) -> None:
    body = gz(ndjson([guest_record(1)]))
    path = upload_path(await allocate(client, admin_auth, body))
    refused = await upload(client, path, body, headers={"x-amz-server-side-encryption": "aws:kms"})
    assert refused.status_code == 400
    response = await client.put(path, content=body)  # Content-Md5 is optional
    assert response.status_code == 200
    assert (await client.put(path, content=body)).status_code == 409  # already uploaded


async def test_mixed_file_imports_good_lines_and_logs_exactly_the_bad_ones(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession
) -> None:
    refs = [str(uuid.uuid4()) for _ in range(12)]
    lines: list[dict[str, Any] | str] = [
        guest_record(1, ref=refs[0]),  # 1 ok
        '{"ref":"broken", "schema":',  # 2 broken JSON
        record("product", {"sku": "1"}, ref=refs[2]),  # 3 unknown record type
        record("guest", {"guestType": "customer", "firstName": "Jane", "lastName": "Doe"}, ref=refs[3]),  # 4
        order_record(1, guest=1, ref=refs[4]),  # 5 ok
        "",  # 6 blank: not a record
        "[1,2]",  # 7 not an object
        record("guest", {"email": "x@example.com"}, mode="destroy", ref=refs[7]),  # 8 unknown mode
        record("guest", {"guestType": "alien", "email": "a@example.com"}, ref=refs[8]),  # 9 invalid value
        {"schema": "guest", "mode": "upsert", "value": {"email": "y@example.com"}},  # 10 no ref
        record("guest", {"identifiers": [{"provider": "CRM", "id": "CRM-1"}]}, mode="create", ref=refs[10]),  # 11
        record(
            "tracking",
            {"type": "VIEW", "createdAt": "2025-01-01T10:00:00Z", "guestRef": "unknown", "page": "home"},
            mode="insert",
            ref=refs[11],
        ),  # 12 unknown guest
        guest_record(2, ref=str(uuid.uuid4()), extensions=[{"name": "ext", "key": "default", "tier": "gold"}]),  # 13
        order_record(2, guest=99, ref=str(uuid.uuid4())),  # 14 ok: creates the contact's guest
    ]
    ref = await submit(client, admin_auth, gz(ndjson(lines)))
    await run_jobs_once(runtime)
    body = await status(client, admin_auth, ref)
    assert body["status"]["code"] == "error"
    assert body["status"]["recordsTotal"] == 13
    assert body["status"]["recordsSucceeded"] == 4
    assert body["status"]["recordsFailed"] == 9
    log = await error_log(client, body["status"]["log"])
    assert log == [
        {"ref": "null", "code": "400", "message": "Failed to parse import line"},
        {"ref": refs[2], "code": "400", "message": "Validation error: schema: unknown schema"},
        {"ref": refs[3], "code": "400", "message": "Not enough identifying information"},
        {"ref": "null", "code": "400", "message": "Failed to parse import line"},
        {"ref": refs[7], "code": "402", "message": "Unsupported mode"},
        {
            "ref": refs[8],
            "code": "400",
            "message": "Validation error: value.guestType: must be one of visitor, customer, traveller",
        },
        {"ref": "null", "code": "400", "message": "Validation error: ref: required"},
        {"ref": refs[10], "code": "409", "message": "Identity already exists"},
        {"ref": refs[11], "code": "404", "message": "Guest not found"},
    ]
    assert await count(db, Guest) == 3
    assert await count(db, Order) == 2
    assert await rows(db, select(GuestExtension.data)) == [({"tier": "gold"},)]
    # The inspect list carries the log for error batches.
    listed = (await client.get("/v2/batches/inspect", auth=admin_auth)).json()
    assert listed["items"][0]["ref"] == ref
    assert listed["items"][0]["status"] == "error"
    assert listed["items"][0]["log"].startswith(f"http://testserver/v2/batches/{ref}/log?expires=")


async def test_tracking_records_land_on_the_guest_timeline(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession
) -> None:
    await run_jobs_once(runtime)
    guest_ref = "0b0c0d0e-0000-4000-8000-000000000001"
    first = await submit(client, admin_auth, gz(ndjson([guest_record(1, guest_ref=guest_ref)])))
    await run_jobs_once(runtime)
    assert (await status(client, admin_auth, first))["status"]["code"] == "success"
    tracking = record(
        "tracking",
        {"type": "VIEW", "createdAt": "2025-01-01T10:00:00Z", "guestRef": guest_ref, "page": "store", "pos": "shop"},
        mode="insert",
    )
    ref = await submit(client, admin_auth, gz(ndjson([tracking])))
    await run_jobs_once(runtime)
    assert (await status(client, admin_auth, ref))["status"]["code"] == "success"
    [event] = await rows(
        db, select(Event.guest_ref, Event.type, Event.channel, Event.page, Event.session_ref, Event.created_at)
    )
    assert event[:5] == (guest_ref, "VIEW", "OFFLINE", "store", None)
    assert event[5].isoformat() == "2025-01-01T10:00:00+00:00"


async def test_upsert_updates_the_matched_guest(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession
) -> None:
    lines: list[dict[str, Any] | str] = [
        guest_record(1, lastName="Old"),
        record("guest", {"identifiers": [{"provider": "CRM", "id": "CRM-1"}], "lastName": "New"}),
        record("guest", {"email": "guest1@example.com", "city": "Cork"}),  # email fallback
    ]
    await submit(client, admin_auth, gz(ndjson(lines)))
    await run_jobs_once(runtime)
    assert await rows(db, select(Guest.first_name, Guest.last_name, Guest.city)) == [("Guest1", "New", "Cork")]


async def test_not_a_gzip_file_ends_in_error_without_log(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime
) -> None:
    ref = await submit(client, admin_auth, b"PK\x03\x04 this is a zip")
    await run_jobs_once(runtime)
    assert (await status(client, admin_auth, ref))["status"] == {
        "code": "error",
        "recordsTotal": 0,
        "recordsSucceeded": 0,
        "recordsFailed": 0,
    }


async def test_error_log_url_is_signed(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, clock: FrozenClock
) -> None:
    ref = await submit(client, admin_auth, gz(b"nope\n"))
    await run_jobs_once(runtime)
    href = (await status(client, admin_auth, ref))["status"]["log"]
    assert len(await error_log(client, href)) == 1
    parts = urlsplit(href)
    forged = parts.query[:-1] + ("0" if parts.query[-1] != "0" else "1")
    assert (await client.get(f"{parts.path}?{forged}")).status_code == 403
    assert (await client.get(parts.path)).status_code == 403
    clock.advance(hours=2)
    assert (await client.get(f"{parts.path}?{parts.query}")).status_code == 403


async def test_inspect_list_filters(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, clock: FrozenClock
) -> None:
    old = await submit(client, admin_auth, gz(ndjson([guest_record(1)])))
    await run_jobs_once(runtime)
    clock.advance(days=1)
    bad = await submit(client, admin_auth, gz(b"nope\n"))
    await run_jobs_once(runtime)
    clock.advance(days=1)
    waiting = (await allocate(client, admin_auth, b"abc")).json()["ref"]

    async def listed(query: str) -> dict[str, Any]:
        response = await client.get(f"/v2/batches/inspect{query}", auth=admin_auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    everything = await listed("")
    assert everything["totalCount"] == 3
    assert (everything["offset"], everything["limit"]) == (0, 10)
    assert [i["ref"] for i in everything["items"]] == [waiting, bad, old]
    assert list(everything["items"][0]) == ["href", "ref", "status", "createdAt", "modifiedAt"]
    assert everything["items"][0]["href"] == f"http://testserver/v2/batches/inspect/{waiting}"
    assert [i["ref"] for i in (await listed("?status=success,error"))["items"]] == [bad, old]
    assert [i["ref"] for i in (await listed("?status=uploading"))["items"]] == [waiting]
    assert [i["ref"] for i in (await listed("?createdBefore=2026-01-16T00:00:00Z"))["items"]] == [old]
    assert [i["ref"] for i in (await listed("?createdAfter=2026-01-16T00:00:00Z"))["items"]] == [waiting, bad]
    page = await listed("?limit=1&offset=1")
    assert (page["totalCount"], [i["ref"] for i in page["items"]]) == (3, [bad])
    clock.advance(days=30)
    assert (await listed(""))["totalCount"] == 1  # the last 30 days only
    for query in ("?status=done", "?limit=101", "?offset=-1", "?createdAfter=yesterday"):
        assert (await client.get(f"/v2/batches/inspect{query}", auth=admin_auth)).status_code == 400, query
