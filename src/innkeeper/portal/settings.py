"""Settings (the gear icon): API access, points of sale, features, identity rules, users (spec §12).

Every page shows the settings tabs; reading needs ``settings.read`` and each change its own
permission. A failed form comes back with its message and the input kept (400), a successful one
redirects with a fixed notice code (``?done=pos-created``), never with text from the request.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from itertools import zip_longest
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from innkeeper.core.db import in_transaction
from innkeeper.core.errors import InnkeeperError
from innkeeper.portal._web import Portal, forbidden, need, page, redirect, router
from innkeeper.tenant import service as tenant
from innkeeper.tenant.errors import (
    InvalidPointOfSale,
    InvalidSettings,
    PointOfSaleExists,
    PointOfSaleNotFound,
    TokenNotFound,
)
from innkeeper.tenant.models import ApiToken, PointOfSale
from innkeeper.users import service as users
from innkeeper.users.errors import InvalidUser, UserChangeForbidden, UserExists, UserNotFound

Read = Annotated[Portal, Depends(need("settings.read"))]
Done = Annotated[str, Query()]
NOTICES = {
    "token-revoked": "The API token was revoked; it no longer works.",
    "pos-created": "Point of sale created.",
    "pos-saved": "Point of sale saved.",
    "pos-deleted": "Point of sale deleted.",
    "features-saved": "Features saved.",
    "rules-saved": "Identity rules saved.",
    "user-created": "User created.",
    "role-changed": "Role changed; it applies to the user's next page.",
    "user-disabled": "User disabled and signed out everywhere.",
    "user-enabled": "User enabled.",
    "password-reset": "Password reset.",
}
MAX_RULES = 5
POS_INPUTS = ("name", "market", "brand", "language", "currency_code", "timeout_minutes", "site_name")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,4})?")  # EN, en-GB, es-419, zh-Hant (≤ 8, the column)
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_MINUTES = re.compile(r"[0-9]{1,5}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def _secret(form: FormData, key: str) -> str:
    """A password field, exactly as typed (not stripped)."""
    value = form.get(key)
    return value if isinstance(value, str) else ""


def _say(exc: InnkeeperError) -> str:
    return exc.developer_message or exc.message


def _show(
    request: Request, portal: Portal, name: str, tab: str, *, status: int = 200, done: str = "", **context: Any
) -> Response:
    context.setdefault("error", None)
    return page(request, name, status, portal=portal, tab=tab, notice=NOTICES.get(done), **context)


def _not_found(request: Request, portal: Portal, tab: str, message: str) -> Response:
    return _show(request, portal, "settings_not_found.html", tab, status=404, message=message)


@router.get("/settings")
async def settings_home(portal: Read) -> Response:
    return redirect("/portal/settings/api-access")


# --- API access -------------------------------------------------------------------------


async def _api_access(request: Request, portal: Portal, *, status: int = 200, **context: Any) -> Response:
    async with portal.runtime.sessions() as session:
        client_key = (await tenant.get_tenant(session)).client_key
        tokens = await tenant.list_tokens(session)
    context.setdefault("created", None)
    context.setdefault("draft", {"label": "", "scope": "rw"})
    return _show(
        request,
        portal,
        "settings_api_access.html",
        "api-access",
        status=status,
        client_key=client_key,
        tokens=tokens,
        scopes=tenant.SCOPES,
        **context,
    )


@router.get("/settings/api-access")
async def api_access(request: Request, portal: Read, done: Done = "") -> Response:
    return await _api_access(request, portal, done=done)


@router.post("/settings/api-access/tokens")
async def create_token(request: Request, portal: Annotated[Portal, Depends(need("api_access.write"))]) -> Response:
    """Create a token and show its value this once (a page, not a redirect: it is never stored)."""
    form = await request.form()
    label, scope = _text(form, "label"), _text(form, "scope")
    draft = {"label": label, "scope": scope}
    if not label or len(label) > 200 or _CONTROL.search(label):
        return await _api_access(request, portal, status=400, draft=draft, error="Label: 1 to 200 characters.")
    if scope not in tenant.SCOPES:
        return await _api_access(request, portal, status=400, draft=draft, error="Scope: admin, rw or ro.")
    runtime = portal.runtime

    async def work(session: AsyncSession) -> tuple[ApiToken, str]:
        return await tenant.create_token(session, label=label, scope=scope, clock=runtime.clock)

    row, value = await in_transaction(runtime.sessions, work)
    return await _api_access(request, portal, created={"label": row.label, "scope": row.scope, "token": value})


@router.post("/settings/api-access/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, token_id: str, portal: Annotated[Portal, Depends(need("api_access.write"))]
) -> Response:
    runtime = portal.runtime

    async def work(session: AsyncSession) -> None:
        await tenant.revoke_token(session, token_id, clock=runtime.clock)

    try:
        await in_transaction(runtime.sessions, work)
    except TokenNotFound:
        return _not_found(request, portal, "api-access", "No active API token has this id.")
    return redirect("/portal/settings/api-access?done=token-revoked")


# --- points of sale ---------------------------------------------------------------------


def pos_url(name: str) -> str:
    """The edit page of a point of sale: ``/`` goes as %2F, so browsers never treat it as a path step."""
    return "/portal/settings/points-of-sale/" + quote(name, safe="")


def _pos_draft(pos: PointOfSale | None = None) -> dict[str, str]:
    if pos is None:
        return {key: "" for key in POS_INPUTS} | {"timeout_minutes": str(tenant.DEFAULT_TIMEOUT_MINUTES)}
    return {key: "" if getattr(pos, key) is None else str(getattr(pos, key)) for key in POS_INPUTS}


def _read_pos(draft: dict[str, str], *, creating: bool) -> tuple[dict[str, Any], list[str]]:
    """The service's fields from the form, and what is wrong with them (in words for a person)."""
    problems = []
    name = draft["name"]
    if creating and (not name or len(name) > 100 or name in (".", "..") or _CONTROL.search(name)):
        problems.append("Name: 1 to 100 characters, no control characters, not . or ..")
    fields: dict[str, Any] = {}
    for key, label in (("market", "Market"), ("brand", "Brand"), ("site_name", "Site name")):
        if len(draft[key]) > 100 or _CONTROL.search(draft[key]):
            problems.append(f"{label}: at most 100 characters.")
        fields[key] = draft[key] or None
    if draft["language"] and not _LANGUAGE.fullmatch(draft["language"]):
        problems.append("Language: a language code such as EN or en-GB.")
    fields["language"] = draft["language"] or None
    if draft["currency_code"] and not _CURRENCY.fullmatch(draft["currency_code"]):
        problems.append("Currency: a three-letter code such as EUR.")
    fields["currency_code"] = draft["currency_code"].upper() or None
    minutes = draft["timeout_minutes"]
    if not _MINUTES.fullmatch(minutes) or not 1 <= int(minutes) <= 1440:
        problems.append("Timeout: a whole number of minutes from 1 to 1440.")
    else:
        fields["timeout_minutes"] = int(minutes)
    return fields, problems


async def _pos_list(request: Request, portal: Portal, *, q: str = "", status: int = 200, **context: Any) -> Response:
    async with portal.runtime.sessions() as session:
        rows = await tenant.list_points_of_sale(session)
    needle = q.strip().lower()
    if needle:
        rows = [
            pos
            for pos in rows
            if any(needle in (value or "").lower() for value in (pos.name, pos.market, pos.brand, pos.site_name))
        ]
    context.setdefault("draft", _pos_draft())
    return _show(
        request,
        portal,
        "settings_points_of_sale.html",
        "points-of-sale",
        status=status,
        q=q,
        rows=[(pos, pos_url(pos.name)) for pos in rows],
        **context,
    )


@router.get("/settings/points-of-sale")
async def points_of_sale(request: Request, portal: Read, q: Annotated[str, Query()] = "", done: Done = "") -> Response:
    return await _pos_list(request, portal, q=q[:200], done=done)


@router.post("/settings/points-of-sale")
async def create_point_of_sale(
    request: Request, portal: Annotated[Portal, Depends(need("points_of_sale.write"))]
) -> Response:
    form = await request.form()
    draft = {key: _text(form, key) for key in POS_INPUTS}
    fields, problems = _read_pos(draft, creating=True)
    if problems:
        return await _pos_list(request, portal, status=400, draft=draft, error=" ".join(problems))
    runtime = portal.runtime

    async def work(session: AsyncSession) -> None:
        await tenant.create_point_of_sale(session, draft["name"], fields=fields, clock=runtime.clock)

    try:
        await in_transaction(runtime.sessions, work)
    except PointOfSaleExists:
        error = "A point of sale with this name already exists."
        return await _pos_list(request, portal, status=409, draft=draft, error=error)
    except InvalidPointOfSale as exc:
        return await _pos_list(request, portal, status=400, draft=draft, error=_say(exc))
    return redirect("/portal/settings/points-of-sale?done=pos-created")


async def _pos_edit(
    request: Request,
    portal: Portal,
    name: str,
    *,
    status: int = 200,
    draft: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    async with portal.runtime.sessions() as session:
        try:
            pos = await tenant.get_point_of_sale(session, name)
        except PointOfSaleNotFound:
            return _not_found(request, portal, "points-of-sale", "No point of sale has this name.")
    return _show(
        request,
        portal,
        "settings_point_of_sale.html",
        "points-of-sale",
        status=status,
        pos=pos,
        url=pos_url(pos.name),
        draft=draft or _pos_draft(pos),
        **context,
    )


@router.get("/settings/points-of-sale/{name:path}")
async def point_of_sale(request: Request, name: str, portal: Read, done: Done = "") -> Response:
    return await _pos_edit(request, portal, name, done=done)


@router.post("/settings/points-of-sale/{name:path}")
async def change_point_of_sale(
    request: Request, name: str, portal: Annotated[Portal, Depends(need("points_of_sale.write"))]
) -> Response:
    """Save the form, or delete the point of sale when the delete button sent ``action=delete``."""
    form = await request.form()
    runtime = portal.runtime
    if _text(form, "action") == "delete":

        async def remove(session: AsyncSession) -> None:
            await tenant.delete_point_of_sale(session, name)

        try:
            await in_transaction(runtime.sessions, remove)
        except PointOfSaleNotFound:
            return _not_found(request, portal, "points-of-sale", "No point of sale has this name.")
        return redirect("/portal/settings/points-of-sale?done=pos-deleted")
    draft = {key: _text(form, key) for key in POS_INPUTS} | {"name": name}
    fields, problems = _read_pos(draft, creating=False)
    if problems:
        return await _pos_edit(request, portal, name, status=400, draft=draft, error=" ".join(problems))

    async def save(session: AsyncSession) -> None:
        await tenant.update_point_of_sale(session, name, fields=fields, clock=runtime.clock)

    try:
        await in_transaction(runtime.sessions, save)
    except PointOfSaleNotFound:
        return _not_found(request, portal, "points-of-sale", "No point of sale has this name.")
    except InvalidPointOfSale as exc:
        return await _pos_edit(request, portal, name, status=400, draft=draft, error=_say(exc))
    return redirect(pos_url(name) + "?done=pos-saved")


# --- features ---------------------------------------------------------------------------


@router.get("/settings/features")
async def features(request: Request, portal: Read, done: Done = "") -> Response:
    async with portal.runtime.sessions() as session:
        row = await tenant.get_tenant(session)
    environment = portal.runtime.settings.environment
    return _show(request, portal, "settings_features.html", "features", done=done, tenant=row, environment=environment)


@router.post("/settings/features")
async def change_features(request: Request, portal: Annotated[Portal, Depends(need("features.write"))]) -> Response:
    """Checkboxes: an unticked box is not sent, so it turns the feature off."""
    form = await request.form()
    changes = {"debug": "debug" in form, "autoCreatePointOfSale": "auto_create_pos" in form}
    runtime = portal.runtime

    async def work(session: AsyncSession) -> None:
        await tenant.update_settings(session, changes, clock=runtime.clock)

    await in_transaction(runtime.sessions, work)
    return redirect("/portal/settings/features?done=features-saved")


# --- identity rules ---------------------------------------------------------------------


def _rule_rows(rules: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rules, then empty rows up to the five the form offers."""
    blank = {"name": "", "provider": ""}
    return [dict(rule) for rule in rules] + [dict(blank) for _ in range(MAX_RULES - len(rules))]


async def _identity(
    request: Request, portal: Portal, *, status: int = 200, rows: list[dict[str, str]] | None = None, **context: Any
) -> Response:
    async with portal.runtime.sessions() as session:
        row = await tenant.get_tenant(session)
    context.setdefault("email_fallback", row.email_fallback)
    return _show(
        request,
        portal,
        "settings_identity_rules.html",
        "identity-rules",
        status=status,
        rules=list(row.identity_rules or []),
        rows=rows if rows is not None else _rule_rows(list(row.identity_rules or [])),
        max_rules=MAX_RULES,
        **context,
    )


@router.get("/settings/identity-rules")
async def identity_rules(request: Request, portal: Read, done: Done = "") -> Response:
    return await _identity(request, portal, done=done)


@router.post("/settings/identity-rules")
async def change_identity_rules(
    request: Request, portal: Annotated[Portal, Depends(need("identity.write"))]
) -> Response:
    """Replace the rules from the form's name/provider rows; empty rows are ignored."""
    form = await request.form()
    names = [v.strip() if isinstance(v, str) else "" for v in form.getlist("rule_name")]
    providers = [v.strip() if isinstance(v, str) else "" for v in form.getlist("rule_provider")]
    rows = [{"name": n, "provider": p} for n, p in zip_longest(names, providers, fillvalue="")]
    rules = [row for row in rows if row["name"] or row["provider"]]
    email_fallback = "email_fallback" in form
    problems = []
    if len(rules) > MAX_RULES:
        problems.append(f"At most {MAX_RULES} identity rules.")
    for number, rule in enumerate(rules, start=1):
        if not rule["name"] or not rule["provider"] or max(len(rule["name"]), len(rule["provider"])) > 100:
            problems.append(f"Rule {number}: a name and a provider, each at most 100 characters.")
    if problems:
        return await _identity(
            request, portal, status=400, rows=rows, email_fallback=email_fallback, error=" ".join(problems)
        )
    runtime = portal.runtime

    async def work(session: AsyncSession) -> None:
        await tenant.update_identity_rules(session, rules=rules, email_fallback=email_fallback, clock=runtime.clock)

    try:
        await in_transaction(runtime.sessions, work)
    except InvalidSettings as exc:
        return await _identity(request, portal, status=400, rows=rows, email_fallback=email_fallback, error=_say(exc))
    return redirect("/portal/settings/identity-rules?done=rules-saved")


# --- users ------------------------------------------------------------------------------

UsersWrite = Annotated[Portal, Depends(need("users.write"))]


async def _users(request: Request, portal: Portal, *, status: int = 200, **context: Any) -> Response:
    async with portal.runtime.sessions() as session:
        rows = await users.list_users(session)
    context.setdefault("draft", {"email": "", "name": "", "role": "MARKETER"})
    return _show(
        request,
        portal,
        "settings_users.html",
        "users",
        status=status,
        users=rows,
        roles=users.assignable_roles(portal.user.role),
        may_manage=users.may_manage,
        min_password=users.MIN_PASSWORD,
        **context,
    )


async def _change_user(
    request: Request,
    portal: Portal,
    change: Callable[..., Awaitable[object]],
    *args: str,
    done: str,
    draft: dict[str, str] | None = None,
    **fields: Any,
) -> Response:
    """Run ``change(session, *args, actor_ref=…, clock=…, **fields)`` (a users service call) in a
    transaction; a role rule answers 403, a refused change 400 (409 for a taken email)."""
    actor, clock = portal.user.ref, portal.runtime.clock

    async def work(session: AsyncSession) -> object:
        return await change(session, *args, actor_ref=actor, clock=clock, **fields)

    try:
        await in_transaction(portal.runtime.sessions, work)
    except UserChangeForbidden as exc:
        raise forbidden(request, portal, _say(exc)) from exc
    except UserNotFound:
        return _not_found(request, portal, "users", "No user has this id.")
    except UserExists:
        return await _users(request, portal, status=409, draft=draft, error="A user with this email exists.")
    except InvalidUser as exc:
        context = {"draft": draft} if draft else {}
        return await _users(request, portal, status=400, error=_say(exc), **context)
    return redirect(f"/portal/settings/users?done={done}")


@router.get("/settings/users")
async def users_page(request: Request, portal: Read, done: Done = "") -> Response:
    return await _users(request, portal, done=done)


@router.post("/settings/users")
async def create_user(request: Request, portal: UsersWrite) -> Response:
    form = await request.form()
    draft = {"email": _text(form, "email"), "name": _text(form, "name"), "role": _text(form, "role")}
    return await _change_user(
        request, portal, users.add_user, **draft, password=_secret(form, "password"), done="user-created", draft=draft
    )


@router.post("/settings/users/{ref}/role")
async def change_role(request: Request, ref: str, portal: UsersWrite) -> Response:
    role = _text(await request.form(), "role")
    return await _change_user(request, portal, users.change_role, ref, role=role, done="role-changed")


@router.post("/settings/users/{ref}/disable")
async def disable_user(request: Request, ref: str, portal: UsersWrite) -> Response:
    return await _change_user(request, portal, users.set_disabled, ref, disabled=True, done="user-disabled")


@router.post("/settings/users/{ref}/enable")
async def enable_user(request: Request, ref: str, portal: UsersWrite) -> Response:
    return await _change_user(request, portal, users.set_disabled, ref, disabled=False, done="user-enabled")


@router.post("/settings/users/{ref}/password")
async def reset_password(request: Request, ref: str, portal: UsersWrite) -> Response:
    password = _secret(await request.form(), "password")
    return await _change_user(request, portal, users.reset_password, ref, password=password, done="password-reset")
