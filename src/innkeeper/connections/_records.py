"""A connection document split into stored config and secrets, its cross-field rules, and masking."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from innkeeper.connections.secrets import MASK

SECRET_FIELDS = (("auth", "password"), ("auth", "clientSecret"), ("smtp", "password"), ("signing", "secret"))
# Custom headers with these in their name are secret unless the header says ``"secret": false``.
_SENSITIVE = re.compile(r"auth|key|token|secret|password|signature|cookie", re.IGNORECASE)
# Headers the sender sets itself (or that would break HTTP framing).
RESERVED_HTTP_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "idempotency-key", "x-innkeeper-delivery-attempt"}
)
RESERVED_EMAIL_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "mime-version"}
)
TOP_LEVEL = ("name", "description", "icon", "systemType", "kind", "archived", "revision")

StoredSecrets = Callable[[], dict[str, str]]


def header_path(name: str) -> str:
    """The secret's key for a custom header's value."""
    return f"header:{name.lower()}"


def is_sensitive(name: str) -> bool:
    """Whether a header name looks like it carries a credential."""
    return bool(_SENSITIVE.search(name))


def split(document: dict[str, Any], stored: StoredSecrets | None) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """(config without secrets, secrets, problems). ``"********"`` keeps the ``stored`` value."""
    config = {k: copy.deepcopy(v) for k, v in document.items() if k not in TOP_LEVEL}
    secrets: dict[str, str] = {}
    problems: list[str] = []
    for section, key in SECRET_FIELDS:
        part = config.get(section)
        if not isinstance(part, dict):
            continue
        path = f"{section}.{key}"
        value = _resolve(part.pop(key, None), path, stored, problems)
        if value:
            secrets[path] = value
    for index, header in enumerate(config.get("customHeaders") or []):
        name = str(header.get("name") or "")
        secret = header.get("secret")
        header["secret"] = is_sensitive(name) if secret is None else bool(secret)
        if header["secret"]:
            raw = header.get("value")
            value = _resolve(raw, header_path(name), stored, problems, label=f"customHeaders.{index}")
            header["value"] = None
            if value:
                secrets[header_path(name)] = value
            elif raw != MASK:
                problems.append(f"customHeaders.{index}.value: a secret header needs a value")
    config["secretsSet"] = sorted(secrets)
    return config, secrets, problems


def _resolve(
    value: Any, path: str, stored: StoredSecrets | None, problems: list[str], *, label: str | None = None
) -> str | None:
    if value != MASK:
        return str(value) if value else None
    kept = stored().get(path) if stored is not None else None
    if not kept:
        problems.append(f"{label or path}: {MASK} keeps the stored secret, but there is none; send the value")
    return kept


def check(kind: str, config: dict[str, Any], secrets: dict[str, str]) -> list[str]:
    """Rules between fields (the schema checked each field alone)."""
    problems: list[str] = []
    auth = config.get("auth") or {}
    auth_type = auth.get("authType", "NONE")
    if kind == "SMTP_EMAIL":
        if not config.get("smtp"):
            problems.append("smtp: required for kind SMTP_EMAIL")
        for field in ("request", "signing"):
            if config.get(field):
                problems.append(f"{field}: not used by kind SMTP_EMAIL")
        if auth_type != "NONE":
            problems.append("auth.authType: SMTP_EMAIL authenticates with smtp.username/smtp.password; use NONE")
        smtp = config.get("smtp") or {}
        if smtp.get("username") and "smtp.password" not in secrets:
            problems.append("smtp.password: required with smtp.username")
        if "smtp.password" in secrets and not smtp.get("username"):
            problems.append("smtp.username: required with smtp.password")
    else:
        if config.get("smtp"):
            problems.append(f"smtp: not used by kind {kind}")
        request = config.get("request") or {}
        if not request.get("connectionUrl"):
            problems.append(f"request.connectionUrl: required for kind {kind}")
    problems += _check_auth(auth_type, auth, secrets)
    problems += _check_headers(kind, config, auth_type)
    signing = config.get("signing")
    if signing and "signing.secret" not in secrets:
        problems.append("signing.secret: required (or omit signing)")
    return problems


def _check_auth(auth_type: str, auth: dict[str, Any], secrets: dict[str, str]) -> list[str]:
    problems: list[str] = []
    wanted = {
        "NONE": set(),
        "BASIC": {"username", "password"},
        "OAUTH2_CLIENT_CREDENTIALS": {"tokenUrl", "clientId", "clientSecret"},
    }[auth_type]
    allowed = wanted | ({"scope"} if auth_type == "OAUTH2_CLIENT_CREDENTIALS" else set())
    for field in ("username", "password", "tokenUrl", "clientId", "clientSecret", "scope"):
        present = f"auth.{field}" in secrets if field in ("password", "clientSecret") else bool(auth.get(field))
        if field in wanted and not present:
            problems.append(f"auth.{field}: required with authType {auth_type}")
        elif present and field not in allowed:
            problems.append(f"auth.{field}: not used with authType {auth_type}")
    return problems


def _check_headers(kind: str, config: dict[str, Any], auth_type: str) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    reserved = RESERVED_EMAIL_HEADERS if kind == "SMTP_EMAIL" else RESERVED_HTTP_HEADERS
    signing = config.get("signing") or {}
    for index, header in enumerate(config.get("customHeaders") or []):
        name = str(header.get("name") or "").lower()
        if name in seen:
            problems.append(f"customHeaders.{index}.name: duplicate header {header.get('name')!r}")
        seen.add(name)
        if name in reserved or (kind == "SMTP_EMAIL" and name.startswith("content-")):
            problems.append(f"customHeaders.{index}.name: {header.get('name')!r} is set by Innkeeper")
        elif name == "authorization" and auth_type != "NONE":
            problems.append(f"customHeaders.{index}.name: Authorization comes from auth.authType {auth_type}")
        elif signing and name == str(signing.get("header") or "").lower():
            problems.append(f"customHeaders.{index}.name: the signing header is set by Innkeeper")
    return problems


def masked(config: dict[str, Any]) -> dict[str, Any]:
    """The stored config as the API shows it: every secret that has a value reads ``"********"``."""
    shown = copy.deepcopy(config)
    kept = set(shown.pop("secretsSet", []))
    for section, key in SECRET_FIELDS:
        part = shown.get(section)
        if isinstance(part, dict):
            part[key] = MASK if f"{section}.{key}" in kept else None
    for header in shown.get("customHeaders") or []:
        if header.get("secret"):
            header["value"] = MASK if header_path(str(header.get("name"))) in kept else None
    return shown
