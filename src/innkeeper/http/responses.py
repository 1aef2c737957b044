"""Fast JSON responses with Sitecore's content types."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

JSON_TYPE = "application/json;charset=UTF-8"
JS_TYPE = "application/javascript;charset=UTF-8"
_encoder = msgspec.json.Encoder()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response encoded with msgspec."""
    return Response(_encoder.encode(body), status_code=status, headers=headers, media_type=JSON_TYPE)


def jsonp_response(callback: str, body: Any) -> Response:
    """``callback(<json>);`` — always 200, so the <script> tag runs even for errors."""
    payload = callback.encode() + b"(" + _encoder.encode(body) + b");"
    return Response(payload, status_code=200, media_type=JS_TYPE, headers={"X-Content-Type-Options": "nosniff"})
