"""Admin API for accounts and the OAuth callback (design.md A1-A11)."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import structlog
from aiohttp import web

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.crypto import TokenCipher
from allegro_sync.adapters.allegro.errors import OAuthError
from allegro_sync.adapters.allegro.oauth import OAuthClient
from allegro_sync.adapters.allegro.tokens import TokenManager
from allegro_sync.adapters.postgres import accounts as store
from allegro_sync.adapters.postgres import event_log, oauth_states
from allegro_sync.config.settings import SettingsError
from allegro_sync.daemon.api.errors import ApiError
from allegro_sync.daemon.api.params import (
    bool_param,
    choice_param,
    datetime_param,
    int_param,
    json_body,
    path_id,
)
from allegro_sync.handlers import accounts
from allegro_sync.handlers.account_options import fetch_options
from allegro_sync.handlers.connect import start_connect, state_hash

log = structlog.get_logger(__name__)

CALLBACK_PATH = "/oauth/callback"


@dataclass(frozen=True)
class AccountDeps:
    """What the account endpoints need."""

    pool: asyncpg.Pool
    cipher: TokenCipher
    oauth: Callable[[bool], OAuthClient]
    tokens: TokenManager
    allegro: AllegroRestClient
    public_url: str

    @property
    def redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + CALLBACK_PATH


async def _load(
    conn: asyncpg.Connection, account_id: int, *, for_update: bool = False
) -> asyncpg.Record:
    row = await store.get(conn, account_id, for_update=for_update)
    if row is None:
        raise ApiError(404, "not_found", f"account {account_id} does not exist")
    return row


def add_account_routes(app: web.Application, deps: AccountDeps) -> None:
    """Register the account endpoints."""

    async def connect(request: web.Request) -> web.Response:
        body = await json_body(request) if request.can_read_body else {}
        if not isinstance(body, dict):
            raise ApiError(422, "validation_error", "body: expected a JSON object", field="body")
        sandbox = body.get("sandbox", False)
        if not isinstance(sandbox, bool):
            raise ApiError(
                422, "validation_error", "sandbox: must be true or false", field="sandbox"
            )
        try:
            started = await start_connect(
                deps.pool, deps.cipher, deps.oauth, redirect_uri=deps.redirect_uri, sandbox=sandbox
            )
        except SettingsError as exc:
            raise ApiError(409, "not_configured", str(exc)) from None
        return web.json_response(
            {"authorize_url": started.authorize_url, "expires_at": started.expires_at.isoformat()}
        )

    async def callback(request: web.Request) -> web.Response:
        wants_json = "application/json" in request.headers.get("Accept", "")
        state = request.query.get("state", "")
        row = None
        if state:
            row = await oauth_states.take(deps.pool, state_hash(state))
        if row is None:
            return _page(
                400,
                "unknown_state",
                "This link is unknown or was already used. Start connecting again.",
                wants_json,
            )
        if row["expired"]:
            return _page(
                400,
                "expired_state",
                "This link expired (10 minutes). Start connecting again.",
                wants_json,
            )
        if request.query.get("error"):
            return _page(
                400,
                "access_denied",
                "The seller did not grant access; nothing was connected.",
                wants_json,
            )
        code = request.query.get("code", "")
        if not code:
            return _page(400, "missing_code", "Allegro sent no authorization code.", wants_json)
        sandbox = bool(row["sandbox"])
        verifier = deps.cipher.decrypt(row["code_verifier_enc"], f"oauth_state:{state_hash(state)}")
        try:
            tokens = await deps.oauth(sandbox).exchange_code(
                code=code, redirect_uri=deps.redirect_uri, code_verifier=verifier
            )
        except OAuthError as exc:
            return _page(
                400,
                "code_refused",
                f"Allegro refused the authorization code ({exc.error}).",
                wants_json,
            )
        me = await deps.allegro.me_with_token(sandbox=sandbox, access_token=tokens.access_token)
        start = await accounts.order_journal_start(
            deps.allegro, sandbox=sandbox, access_token=tokens.access_token
        )
        async with deps.pool.acquire() as conn, conn.transaction():
            account_id, created = await accounts.connect_account(
                conn,
                deps.cipher,
                allegro_user_id=str(me["id"]),
                login=str(me["login"]),
                sandbox=sandbox,
                tokens=tokens,
                order_journal=start,
                email=accounts.account_email(me),
            )
            account = await _load(conn, account_id)
        deps.tokens.forget(account_id)
        log.info("account_connected", account_id=account_id, created=created, sandbox=sandbox)
        if wants_json:
            return web.json_response(
                {"account": accounts.account_json(account), "created": created}
            )
        verb = "connected" if created else "reconnected"
        return _page(
            200,
            "connected",
            f"Allegro account {me['login']} is {verb}. You can close this page.",
            False,
        )

    async def list_accounts(request: web.Request) -> web.Response:
        limit = int_param(request, "limit", 100, low=1, high=1000)
        after = int_param(request, "cursor", None)
        assert limit is not None
        async with deps.pool.acquire() as conn:
            rows = await store.list_all(
                conn,
                active=bool_param(request, "active"),
                sandbox=bool_param(request, "sandbox"),
                after_id=after,
                limit=limit + 1,
            )
        items = [accounts.account_json(r) for r in rows[:limit]]
        next_cursor = str(rows[limit - 1]["id"]) if len(rows) > limit else None
        return web.json_response({"items": items, "next": next_cursor})

    async def show(request: web.Request) -> web.Response:
        async with deps.pool.acquire() as conn:
            return web.json_response(accounts.account_json(await _load(conn, path_id(request))))

    async def patch(request: web.Request) -> web.Response:
        account_id = path_id(request)
        try:
            row = await accounts.change_settings(
                deps.pool, deps.allegro, account_id, await json_body(request)
            )
        except accounts.PatchError as exc:
            raise _api_error(exc) from None
        return web.json_response(accounts.account_json(row))

    async def delete(request: web.Request) -> web.Response:
        account_id = path_id(request)
        try:
            async with deps.pool.acquire() as conn, conn.transaction():
                await accounts.delete_account(conn, account_id)
        except accounts.PatchError as exc:
            raise _api_error(exc) from None
        deps.tokens.forget(account_id)
        return web.Response(status=204)

    async def fresh_token(request: web.Request) -> web.Response:
        account_id = path_id(request)
        async with deps.pool.acquire() as conn:
            await _load(conn, account_id)
        auth = await deps.tokens.refresh(account_id, seen_generation=None)
        return web.json_response(
            {
                "account_id": account_id,
                "refreshed": True,
                "expires_at": datetime.fromtimestamp(auth.expires_at, UTC).isoformat(),
            }
        )

    async def events(request: web.Request) -> web.Response:
        account_id = path_id(request)
        limit = int_param(request, "limit", 100, low=1, high=1000)
        assert limit is not None
        async with deps.pool.acquire() as conn:
            await _load(conn, account_id)
            items = await event_log.list_entries(
                conn,
                account_id,
                category=choice_param(request, "category", event_log.CATEGORIES),
                since=datetime_param(request, "since"),
                before_id=int_param(request, "cursor", None),
                limit=limit + 1,
            )
        next_cursor = str(items[limit - 1]["id"]) if len(items) > limit else None
        return web.json_response({"items": items[:limit], "next": next_cursor})

    async def options(request: web.Request) -> web.Response:
        account_id = path_id(request)
        async with deps.pool.acquire() as conn:
            await _load(conn, account_id)
        found = await fetch_options(deps.allegro, account_id)
        await store.update(
            deps.pool, account_id, {"allowed_extra_emails": found["additional_emails"]}
        )
        return web.json_response(found)

    app.router.add_post("/accounts/connect", connect)
    app.router.add_get(CALLBACK_PATH, callback)
    app.router.add_get("/accounts", list_accounts)
    app.router.add_get("/accounts/{id}", show)
    app.router.add_patch("/accounts/{id}", patch)
    app.router.add_delete("/accounts/{id}", delete)
    app.router.add_post("/accounts/{id}/token", fresh_token)
    app.router.add_get("/accounts/{id}/event-log", events)
    app.router.add_get("/accounts/{id}/options", options)


def _api_error(exc: accounts.PatchError) -> ApiError:
    error = {404: "not_found", 409: "conflict", 422: "validation_error"}.get(exc.status, "error")
    return ApiError(exc.status, error, f"{exc.field}: {exc.detail}", field=exc.field)


def _page(status: int, code: str, text: str, wants_json: bool) -> web.Response:
    """The browser gets a short page; API clients JSON."""
    if wants_json:
        if status >= 400:
            return web.json_response({"error": code, "detail": text}, status=status)
        return web.json_response({"status": code, "detail": text}, status=status)
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>allegro-sync</title>"
        "<body style='font-family:sans-serif;margin:3em'><h1>allegro-sync</h1>"
        f"<p>{html.escape(text)}</p>"
        + ("<p><a href='/panel/accounts'>Panel</a></p>" if status == 200 else "")
        + "</body></html>"
    )
    return web.Response(status=status, text=body, content_type="text/html")
