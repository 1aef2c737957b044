"""The flow execution request (spec personalize.md §2.3): parsing and validation, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from innkeeper.core.ids import is_ref
from innkeeper.personalize.experiences.errors import CallFlowsInvalid

MAX_FRIENDLY_ID = 256
MAX_PARAMS_DEPTH = 10
# Legacy {"context": {...}} bodies: these keys become request fields, the rest goes to params.
_CONTEXT_FIELDS = (
    "clientKey",
    "channel",
    "language",
    "currencyCode",
    "pointOfSale",
    "browserId",
    "email",
    "identifiers",
    "friendlyId",
    "guestRef",
    "params",
)


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One validated execution request."""

    client_key: str
    friendly_id: str | None
    flow_ref: str | None
    channel: str
    language: str | None
    currency_code: str | None
    point_of_sale: str | None
    browser_id: str | None
    email: str | None
    identifier: tuple[str, str] | None
    guest_ref: str | None
    params: dict[str, Any]
    variants: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    ip: str | None = None
    correlation_id: str | None = None
    legacy_context: bool = False

    def as_model(self, point_of_sale: str | None) -> dict[str, Any]:
        """The ``request`` object of templates and conditions (§5.4, §6.3)."""
        identifiers = {"provider": self.identifier[0], "id": self.identifier[1]} if self.identifier else None
        geo = self.params.get("geo") if isinstance(self.params.get("geo"), dict) else None
        return {
            "clientKey": self.client_key,
            "channel": self.channel,
            "language": self.language,
            "currencyCode": self.currency_code,
            "pointOfSale": point_of_sale,
            "browserId": self.browser_id,
            "email": self.email,
            "identifiers": identifiers,
            "friendlyId": self.friendly_id,
            "params": self.params,
            "variants": self.variants,
            "headers": self.headers,
            "ip": self.ip,
            "geo": geo,
        }


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_PARAMS_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(item, level + 1) for item in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(item, level + 1) for item in value), default=level + 1)
    return level


def _optional_str(body: dict[str, Any], key: str, limit: int = 200) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CallFlowsInvalid("INVALID_FIELD", f"{key} must be a string")
    if len(value) > limit:
        raise CallFlowsInvalid("INVALID_FIELD", f"{key} is longer than {limit} characters")
    return value


def unwrap_legacy(body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Old Boxever callers send ``{"context": {...}}``; unknown context keys go to ``params``."""
    context = body.get("context")
    if set(body) != {"context"} or not isinstance(context, dict):
        return body, False
    flat = {key: value for key, value in context.items() if key in _CONTEXT_FIELDS}
    extra = {key: value for key, value in context.items() if key not in _CONTEXT_FIELDS}
    given = flat.get("params")
    params: dict[str, Any] = given if isinstance(given, dict) else {}
    flat["params"] = {**extra, **params}
    return flat, True


def parse_call(
    body: Any,
    *,
    cloud: bool,
    flow_ref: str | None = None,
    headers: dict[str, str] | None = None,
    ip: str | None = None,
    correlation_id: str | None = None,
) -> CallRequest:
    """Validate a request body; raise ``CallFlowsInvalid`` with the §2.7 machine code."""
    if not isinstance(body, dict):
        raise CallFlowsInvalid("INVALID_JSON", "the body must be a JSON object")
    body, legacy = unwrap_legacy(body)
    client_key = body.get("clientKey", "")
    if not isinstance(client_key, str):
        raise CallFlowsInvalid("INVALID_FIELD", "clientKey must be a string")
    if not client_key and not cloud:
        raise CallFlowsInvalid("MISSING_FIELD", "clientKey is required")
    friendly_id = body.get("friendlyId")
    if flow_ref is None:
        if friendly_id is None or friendly_id == "":
            raise CallFlowsInvalid("MISSING_FIELD", "friendlyId is required")
        if not isinstance(friendly_id, str):
            raise CallFlowsInvalid("INVALID_FIELD", "friendlyId must be a string")
        if len(friendly_id) > MAX_FRIENDLY_ID:
            raise CallFlowsInvalid("INVALID_FIELD", f"friendlyId is longer than {MAX_FRIENDLY_ID} characters")
    else:
        friendly_id = None
    browser_id = _optional_str(body, "browserId", 100)
    email = _optional_str(body, "email", 320)
    identifier = _identifier(body.get("identifiers"))
    given = [
        name for name, value in (("browserId", browser_id), ("email", email), ("identifiers", identifier)) if value
    ]
    if len(given) > 1:
        raise CallFlowsInvalid("INVALID_IDENTITY", "use only one of browserId, email or identifiers")
    guest_ref = _optional_str(body, "guestRef", 100)
    if not given and guest_ref is None:
        raise CallFlowsInvalid("MISSING_IDENTITY", "one of browserId, email or identifiers is required")
    if browser_id is not None and not is_ref(browser_id):
        raise CallFlowsInvalid("INVALID_FIELD", "browserId is not a browser reference")
    if guest_ref is not None and not is_ref(guest_ref):
        if given:
            guest_ref = None
        else:
            raise CallFlowsInvalid("INVALID_FIELD", "guestRef is not a guest reference")
    params = body.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise CallFlowsInvalid("INVALID_FIELD", "params must be an object")
    if _depth(params) > MAX_PARAMS_DEPTH:
        raise CallFlowsInvalid("INVALID_FIELD", f"params is nested deeper than {MAX_PARAMS_DEPTH} levels")
    variants = body.get("variants", [])
    if variants is None:
        variants = []
    if not isinstance(variants, list) or not all(isinstance(item, str) for item in variants):
        raise CallFlowsInvalid("INVALID_FIELD", "variants must be an array of strings")
    channel = _optional_str(body, "channel", 40) or "WEB"
    language = _optional_str(body, "language", 8)
    currency = _optional_str(body, "currencyCode", 8)
    return CallRequest(
        client_key=client_key,
        friendly_id=friendly_id,
        flow_ref=flow_ref,
        channel=channel.upper(),
        language=language.upper() if language else None,
        currency_code=currency.upper() if currency else None,
        point_of_sale=_optional_str(body, "pointOfSale", 100),
        browser_id=browser_id,
        email=email,
        identifier=identifier,
        guest_ref=guest_ref,
        params=params,
        variants=variants,
        headers=headers or {},
        ip=ip,
        correlation_id=correlation_id,
        legacy_context=legacy,
    )


def _identifier(value: Any) -> tuple[str, str] | None:
    if value is None or value == {} or value == []:
        return None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, dict):
        raise CallFlowsInvalid("INVALID_FIELD", 'identifiers must be {"provider": "…", "id": "…"}')
    provider, ident = value.get("provider"), value.get("id")
    if not isinstance(provider, str) or not provider or not isinstance(ident, str) or not ident:
        raise CallFlowsInvalid("INVALID_FIELD", 'identifiers must be {"provider": "…", "id": "…"}')
    if len(provider) > 100 or len(ident) > 500:
        raise CallFlowsInvalid("INVALID_FIELD", "identifiers provider or id is too long")
    return provider, ident
