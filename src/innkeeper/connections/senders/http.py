"""Webhook delivery with httpx: basic / OAuth2 client-credentials auth, HMAC signatures, classified failures."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from innkeeper import __version__
from innkeeper.connections.senders._types import (
    EXCERPT_LIMIT,
    BasicAuth,
    DeliveryResult,
    OAuth2ClientCredentials,
    Probe,
    WebhookRequest,
    fail,
    retry,
    sent,
)
from innkeeper.core.clock import Clock, as_utc

RETRYABLE_STATUSES = frozenset({408, 425, 429})
TOKEN_EXPIRY_MARGIN = timedelta(seconds=30)
DEFAULT_TOKEN_LIFETIME = timedelta(hours=1)
USER_AGENT = f"Innkeeper/{__version__}"


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class TokenError(Exception):
    """The token endpoint did not hand out a token; carries the delivery result to report."""

    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(result.reason)
        self.result = result


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: datetime


class TokenCache:
    """OAuth2 access tokens per (token URL, client, scope), reused until shortly before they expire."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._tokens: dict[tuple[str, str, str, str], _Token] = {}
        self._locks: dict[tuple[str, str, str, str], asyncio.Lock] = {}

    @staticmethod
    def _key(grant: OAuth2ClientCredentials) -> tuple[str, str, str, str]:
        secret_digest = hashlib.sha256(grant.client_secret.encode()).hexdigest()
        return (grant.token_url, grant.client_id, grant.scope or "", secret_digest)

    async def token(self, grant: OAuth2ClientCredentials, client: httpx.AsyncClient) -> str:
        """A valid access token, fetched from the token URL when none is cached."""
        key = self._key(grant)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one fetch at a time per client: concurrent sends share it
            cached = self._tokens.get(key)
            if cached is not None and self.clock.now() < cached.expires_at:
                return cached.value
            token = await self._fetch(grant, client)
            self._tokens[key] = token
            return token.value

    def forget(self, grant: OAuth2ClientCredentials) -> None:
        """Drop a token the receiver refused (401), so the next send fetches a new one."""
        self._tokens.pop(self._key(grant), None)

    async def _fetch(self, grant: OAuth2ClientCredentials, client: httpx.AsyncClient) -> _Token:
        form = {"grant_type": "client_credentials"}
        if grant.scope:
            form["scope"] = grant.scope
        try:
            response = await client.post(
                grant.token_url,
                data=form,
                auth=httpx.BasicAuth(grant.client_id, grant.client_secret),
                headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            )
        except httpx.TimeoutException:
            raise TokenError(retry("token request timed out")) from None
        except httpx.HTTPError:
            raise TokenError(retry("token request failed: connection error")) from None
        if response.status_code != 200:
            result = _classify(response, now=self.clock.now(), prefix="token endpoint answered")
            raise TokenError(result)
        try:
            body = response.json()
            value = body["access_token"]
            lifetime = timedelta(seconds=float(body.get("expires_in", DEFAULT_TOKEN_LIFETIME.total_seconds())))
        except (ValueError, KeyError, TypeError):
            raise TokenError(fail("token endpoint answered without an access_token")) from None
        if not isinstance(value, str) or not value:
            raise TokenError(fail("token endpoint answered without an access_token"))
        expires_at = as_utc(self.clock.now()) + max(lifetime - TOKEN_EXPIRY_MARGIN, timedelta(0))
        return _Token(value, expires_at)


class HttpWebhookSender:
    """Sends webhook requests over HTTP(S). One per process: it owns the OAuth2 token cache."""

    def __init__(self, *, clock: Clock, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.clock = clock
        self.tokens = TokenCache(clock)
        self._transport = transport

    async def send(self, request: WebhookRequest) -> DeliveryResult:
        """Deliver one request; every failure is reported, never raised."""
        return (await self.probe(request)).result

    async def probe(self, request: WebhookRequest) -> Probe:
        """Deliver one request and report the steps (token, request) for "test connection"."""
        started = time.perf_counter()
        steps: list[str] = []
        timeout = httpx.Timeout(request.read_timeout, connect=request.connect_timeout)
        async with httpx.AsyncClient(timeout=timeout, transport=self._transport, follow_redirects=False) as client:
            result = await self._attempt(client, request, steps, refresh_on_401=True)
        latency = round((time.perf_counter() - started) * 1000, 1)
        timed = DeliveryResult(
            result.outcome, result.reason, result.status_code, result.retry_after, latency, result.response_excerpt
        )
        return Probe(timed, tuple(steps))

    async def _attempt(
        self, client: httpx.AsyncClient, request: WebhookRequest, steps: list[str], *, refresh_on_401: bool
    ) -> DeliveryResult:
        headers = httpx.Headers(request.headers)
        headers.setdefault("User-Agent", USER_AGENT)
        auth: httpx.Auth | None = None
        grant = request.auth if isinstance(request.auth, OAuth2ClientCredentials) else None
        if grant is not None:
            try:
                headers["Authorization"] = f"Bearer {await self.tokens.token(grant, client)}"
            except TokenError as exc:
                return exc.result
            steps.append("token")
        elif isinstance(request.auth, BasicAuth):
            auth = httpx.BasicAuth(request.auth.username, request.auth.password)
        if request.signing is not None:
            stamp = int(as_utc(self.clock.now()).timestamp())
            headers[request.signing.header] = signature(request.signing.secret, request.body, stamp)
        try:
            response = await client.request(
                request.method, request.url, content=request.body, headers=headers, auth=auth
            )
        except httpx.TimeoutException:
            return retry("timed out")
        except httpx.UnsupportedProtocol:
            return fail("unsupported URL scheme")
        except httpx.InvalidURL:
            return fail("invalid URL")
        except (httpx.HTTPError, OSError):
            return retry("connection failed")
        steps.append("request")
        if response.status_code == 401 and grant is not None and refresh_on_401:
            # The cached token may have been revoked early: fetch a new one and try once more.
            self.tokens.forget(grant)
            return await self._attempt(client, request, steps, refresh_on_401=False)
        return _classify(response, now=self.clock.now())


def _classify(response: httpx.Response, *, now: datetime, prefix: str = "HTTP") -> DeliveryResult:
    status = response.status_code
    excerpt = _excerpt(response)
    if 200 <= status < 300:
        return sent(f"{prefix} {status}", status_code=status, excerpt=excerpt)
    if status in RETRYABLE_STATUSES or status >= 500:
        after = _retry_after(response.headers.get("retry-after"), now)
        return retry(f"{prefix} {status}", status_code=status, retry_after=after, excerpt=excerpt)
    if 300 <= status < 400:
        return fail(f"{prefix} {status} (redirects are not followed)", status_code=status, excerpt=excerpt)
    return fail(f"{prefix} {status}", status_code=status, excerpt=excerpt)


def _excerpt(response: httpx.Response) -> str | None:
    content = response.content[:EXCERPT_LIMIT]
    return content.decode("utf-8", errors="replace") if content else None


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - as_utc(now)).total_seconds(), 0.0)
