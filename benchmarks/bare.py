"""Baseline for `benchmarks/ingest.py` and `callflows.py`: the cheapest server honouring the same contract.

A bare Starlette app with two routes:

- ``POST /v1.2/events`` reads the body, parses it with msgspec (as Innkeeper does), checks it
  is a JSON object and answers ``201`` with the Stream success shape (spec cdp.md §3.4) as
  ``application/json;charset=UTF-8``.
- ``POST /v2/callFlows`` reads the body, parses it with msgspec, checks it is a JSON object
  with ``clientKey`` and ``friendlyId``, and answers ``200`` with a small JSON object of the
  size the benchmark's templates render, plus the ``X-Innkeeper-Flow-Outcome`` /
  ``X-Innkeeper-Variant-Ref`` headers (spec personalize.md §2.6).

No database, no middleware: the ratio innkeeper/bare is what everything else costs.

Run exactly like ``innkeeper serve``: one uvicorn process, same options.

    python benchmarks/bare.py --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import argparse
import os
import uuid

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

JSON_TYPE = "application/json;charset=UTF-8"
CLIENT_KEY = os.environ.get("INNKEEPER_CLIENT_KEY", "bench-client-key")
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def _reply(body: object, status: int) -> Response:
    return Response(_encoder.encode(body), status_code=status, media_type=JSON_TYPE)


async def events_post(request: Request) -> Response:
    """Parse the event, answer like Innkeeper's Stream POST (no storage)."""
    try:
        message = _decoder.decode(await request.body())
    except msgspec.DecodeError:
        message = None
    if not isinstance(message, dict):
        return _reply({"status": "BAD_REQUEST", "code": 400, "message": "Unable to parse message"}, 400)
    browser_id = message.get("browser_id")
    body = {
        "status": "OK",
        "version": "1.2",
        "client_key": CLIENT_KEY,
        "ref": browser_id,
        "customer_ref": str(uuid.uuid5(uuid.NAMESPACE_URL, str(browser_id))),
        "event_ref": str(uuid.uuid4()),
    }
    return _reply(body, 201)


async def call_flows(request: Request) -> Response:
    """Parse the callFlows body, answer like a rendered variant of Innkeeper's ``POST /v2/callFlows`` (no flow)."""
    try:
        call = _decoder.decode(await request.body())
    except msgspec.DecodeError:
        call = None
    if not isinstance(call, dict) or not call.get("clientKey") or not call.get("friendlyId"):
        body = {"status": 400, "code": 400, "message": "Bad Request", "developerMessage": "INVALID_JSON: bare"}
        return _reply(body, 400)
    params = call.get("params")
    page = params.get("page", "/") if isinstance(params, dict) else "/"
    body = {"greeting": "Hello visitor", "flow": call["friendlyId"], "page": page, "sessions": 50}
    headers = {"X-Innkeeper-Flow-Outcome": "variant", "X-Innkeeper-Variant-Ref": "default"}
    return Response(_encoder.encode(body), status_code=200, media_type=JSON_TYPE, headers=headers)


async def healthz(request: Request) -> Response:
    return _reply({"status": "OK"}, 200)


app = Starlette(
    routes=[
        Route("/v1.2/events", events_post, methods=["POST"]),
        Route("/v2/callFlows", call_flows, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    # The same uvicorn.run options as `innkeeper serve` (src/innkeeper/cli.py).
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False, proxy_headers=True)


if __name__ == "__main__":
    main()
