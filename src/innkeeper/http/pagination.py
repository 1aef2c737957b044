"""Sitecore-style collections: ``{href, offset, limit, items}`` with the effective paging in href."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from innkeeper.core.runtime import Runtime

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def base_url(request: Request, runtime: Runtime) -> str:
    """The public base URL for hrefs (INNKEEPER_PUBLIC_URL, else the request's)."""
    return (runtime.settings.public_url or str(request.base_url)).rstrip("/")


def collection_href(request: Request, runtime: Runtime, *, offset: int, limit: int, **filters: Any) -> str:
    """The collection URL with the effective offset/limit and the filters that were used."""
    query = {"offset": offset, "limit": limit, **{k: v for k, v in filters.items() if v is not None}}
    return f"{base_url(request, runtime)}{request.url.path}?{urlencode(query)}"


def collection(href: str, *, offset: int, limit: int, items: list[Any], total: int | None = None) -> dict[str, Any]:
    """The collection body."""
    body: dict[str, Any] = {"href": href, "offset": offset, "limit": limit, "items": items}
    if total is not None:
        body["total"] = total
    return body
