"""Konta Allegro: the list, adding an account through Allegro's sign-in, and the account's
details with every setting of design.md section 4 (A1-A11)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import structlog
from aiohttp import web

from allegro_sync.adapters.allegro.errors import AllegroError
from allegro_sync.adapters.postgres import accounts as account_store
from allegro_sync.adapters.postgres import event_log, panel_reads
from allegro_sync.config.settings import SettingsError
from allegro_sync.daemon.panel import forms
from allegro_sync.daemon.panel.deps import PanelDeps, deps_of
from allegro_sync.daemon.panel.render import render
from allegro_sync.errors import CredentialsDead
from allegro_sync.handlers import accounts
from allegro_sync.handlers.account_options import fetch_options
from allegro_sync.handlers.connect import start_connect

log = structlog.get_logger(__name__)

# The account's switches in the sections of the seller's help article, in its words.
SECTIONS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "orders",
        "Zamówienia",
        (
            ("auto_create_orders", "Twórz automatycznie zamówienia do oferty"),
            ("send_order_emails", "Wysyłaj powiadomienia e-mail do zamówień z Allegro"),
            ("bind_offers_by_ean", "Powiąż automatycznie towary do ofert"),
            (
                "mark_sent_on_tracking",
                "Oznacz zamówienie jako wysłane po dodaniu numeru przesyłki",
            ),
        ),
    ),
    (
        "stock",
        "Kontrola stanów magazynowych w Allegro",
        (
            ("stock_control", "Kontroluj stany magazynowe dla oferty Allegro"),
            ("raise_quantity_on_erp_sync", "Zwiększ ilość na ofertach po synchronizacji z ERP"),
            ("auto_renew", "Wznów ofertę automatycznie po jej zamknięciu"),
            ("renew_with_current_price", "Wznów ofertę z aktualną ceną towaru"),
            (
                "do_not_renew_default",
                "Nowe oferty: Nie wznawiaj oferty automatycznie po jej zamknięciu",
            ),
        ),
    ),
    (
        "customers",
        "Klienci",
        (
            ("send_customer_card", "Przesyłaj kartę klienta do systemu ERP"),
            (
                "only_customers_with_nip",
                "Przesyłaj do systemu ERP tylko kartę klienta zawierającą numer NIP",
            ),
        ),
    ),
    (
        "prices",
        "Ceny w Allegro",
        (("sync_prices", "Zmień cenę na ofercie po zmianie ceny towaru"),),
    ),
    (
        "products",
        "Wystawianie ofert",
        (
            (
                "update_offers_from_products",
                "Aktualizuj oferty po zmianie nazwy, opisu, zdjęć lub parametrów towaru",
            ),
        ),
    ),
)
SECTION_FIELDS = {key: tuple(name for name, _ in items) for key, _, items in SECTIONS}
PRODUCTION_ONLY = frozenset({"stock_control"})
LOG_CATEGORIES = event_log.CATEGORIES
ADDRESS_FIELDS = ("street", "city", "post_code", "province", "country_code")
# "Wysyłam z Allegro": the sender on labels (and the pickup address) and the default package.
SENDER_FIELDS = (
    ("name", "Imię i nazwisko"),
    ("company", "Firma"),
    ("street", "Ulica"),
    ("postal_code", "Kod pocztowy"),
    ("city", "Miejscowość"),
    ("country_code", "Kraj (kod)"),
    ("phone", "Telefon"),
    ("email", "E-mail"),
)
PACKAGE_TYPES = ("PACKAGE", "DOX", "PALLET", "OTHER")
PACKAGE_SIZES = (
    ("length", "Długość (cm)"),
    ("width", "Szerokość (cm)"),
    ("height", "Wysokość (cm)"),
    ("weight", "Waga (kg)"),
)
AFTER_SALES = (
    ("return_policy_id", "return_policies", "Warunki zwrotów"),
    ("implied_warranty_id", "implied_warranties", "Reklamacje"),
    ("warranty_id", "warranties", "Gwarancje"),
)


def _deps(request: web.Request) -> PanelDeps:
    return deps_of(request)


def _account_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    return int(raw)


def _detail_url(account_id: int, **query: str) -> str:
    return f"/panel/accounts/{account_id}" + (f"?{urlencode(query)}" if query else "")


async def list_page(request: web.Request) -> web.Response:
    deps = _deps(request)
    async with deps.pool.acquire() as conn:
        rows = await account_store.list_all(
            conn, active=None, sandbox=None, after_id=None, limit=1000
        )
    items = [accounts.account_json(r) for r in rows]
    return render(request, "accounts.html", section="accounts", items=items)


async def add_page(request: web.Request) -> web.Response:
    return render(request, "account_add.html", section="accounts", error="")


async def connect(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    form = await request.post()
    sandbox = "sandbox" in form
    try:
        started = await start_connect(
            deps.pool, deps.cipher, deps.oauth, redirect_uri=deps.redirect_uri, sandbox=sandbox
        )
    except SettingsError as exc:
        return render(request, "account_add.html", 409, section="accounts", error=str(exc))
    raise web.HTTPSeeOther(started.authorize_url)


async def _options(deps: PanelDeps, account: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """Allegro's lists for the account, or None and why not."""
    if not account["active"]:
        return None, "inactive"
    try:
        return await fetch_options(deps.allegro, account["id"]), ""
    except CredentialsDead as exc:
        return None, exc.reason
    except AllegroError as exc:
        return None, str(exc)


async def detail_page(
    request: web.Request,
    errors: dict[str, str] | None = None,
    status: int = 200,
    values: dict[str, Any] | None = None,
    token: dict[str, str] | None = None,
) -> web.Response:
    deps = _deps(request)
    account_id = _account_id(request)
    category = request.query.get("category") or None
    if category not in (None, *LOG_CATEGORIES):
        category = None
    async with deps.pool.acquire() as conn:
        row = await account_store.get(conn, account_id)
        if row is None:
            raise web.HTTPNotFound()
        entries = await event_log.list_entries(
            conn, account_id, category=category, since=None, before_id=None, limit=50
        )
        bound = await account_store.count_bound_offers(conn, account_id)
        lists = await panel_reads.price_lists(conn)
    account = accounts.account_json(row)
    options, options_problem = await _options(deps, account)
    return render(
        request,
        "account.html",
        status,
        section="accounts",
        here=_detail_url(account_id, **({"category": category} if category else {})),
        a=account,
        sections=SECTIONS,
        production_only=PRODUCTION_ONLY,
        entries=entries,
        categories=LOG_CATEGORIES,
        category=category or "",
        bound=bound,
        price_lists=lists,
        options=options,
        options_problem=options_problem,
        after_sales=AFTER_SALES,
        address_fields=ADDRESS_FIELDS,
        sender_fields=SENDER_FIELDS,
        package_types=PACKAGE_TYPES,
        package_sizes=PACKAGE_SIZES,
        errors=errors or {},
        values=values or {},
        token=token,
        saved=request.query.get("saved", ""),
    )


async def _change(
    request: web.Request, body: dict[str, Any], values: dict[str, Any] | None = None
) -> web.StreamResponse:
    """Apply ``body`` as ``PATCH /accounts/{id}`` does; the page again with the error next to
    its field when refused."""
    deps = _deps(request)
    account_id = _account_id(request)
    if body:
        try:
            await accounts.change_settings(deps.pool, deps.allegro, account_id, body)
        except accounts.PatchError as exc:
            if exc.status == 404:
                raise web.HTTPNotFound() from None
            return await detail_page(
                request, errors={exc.field: exc.detail}, status=exc.status, values=values
            )
    back = str((await request.post()).get("back", ""))
    if back == "list":
        raise web.HTTPSeeOther("/panel/accounts")
    raise web.HTTPSeeOther(_detail_url(account_id, saved="1" if body else "0"))


async def rename(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("name", ""))
    return await _change(request, {"name": name}, {"name": name})


async def set_active(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    return await _change(request, {"active": form.get("active") == "true"})


async def set_switches(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    form = await request.post()
    names = SECTION_FIELDS.get(str(form.get("section", "")))
    if names is None:
        raise web.HTTPBadRequest()
    async with deps.pool.acquire() as conn:
        row = await account_store.get(conn, _account_id(request))
    if row is None:
        raise web.HTTPNotFound()
    wanted = forms.switches(form, names)
    return await _change(request, {k: v for k, v in wanted.items() if row[k] != v})


async def set_listing(request: web.Request) -> web.StreamResponse:
    """Price list, default category, after-sales conditions, shipping rates, orders-from."""
    deps = _deps(request)
    form = await request.post()
    async with deps.pool.acquire() as conn:
        row = await account_store.get(conn, _account_id(request))
    if row is None:
        raise web.HTTPNotFound()
    current = accounts.account_json(row)
    body: dict[str, Any] = {}
    price_list = str(form.get("price_list", "")).strip()
    if price_list != current["price_list"]:
        body["price_list"] = price_list
    for name in ("default_category_id", "shipping_rates_id"):
        value = forms.text(form, name)
        if value != current[name]:
            body[name] = value
    after_sales = {key: forms.text(form, f"after_sales.{key}") for key, _, _ in AFTER_SALES}
    if after_sales != current["after_sales"]:
        body["after_sales"] = after_sales if any(after_sales.values()) else None
    raw_from = str(form.get("orders_from", "")).strip()
    if raw_from and "orders_from" in form:
        moment = forms.warsaw_datetime(raw_from)
        known = row["orders_from"]
        if not (
            isinstance(moment, datetime)
            and known
            and moment == known.replace(second=0, microsecond=0)
        ):
            body["orders_from"] = moment.isoformat() if isinstance(moment, datetime) else moment
    values = {k: str(v) for k, v in form.items()}
    return await _change(request, body, values)


async def set_address(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    given = {name: forms.text(form, name) for name in ADDRESS_FIELDS}
    address = None if not any(given.values()) else {k: v for k, v in given.items() if v}
    values = {f"address.{k}": str(form.get(k, "")) for k in ADDRESS_FIELDS}
    return await _change(request, {"address": address}, values)


async def set_sender(request: web.Request) -> web.StreamResponse:
    """The sender of parcels sent with Allegro (``shipping_sender``); every field empty clears
    it."""
    form = await request.post()
    given = {name: forms.text(form, name) for name, _ in SENDER_FIELDS}
    sender = None if not any(given.values()) else {k: v for k, v in given.items() if v}
    values = {f"shipping_sender.{k}": str(form.get(k, "")) for k, _ in SENDER_FIELDS}
    return await _change(request, {"shipping_sender": sender}, values)


async def set_package(request: web.Request) -> web.StreamResponse:
    """The package of a parcel request that names none (``default_package``); the sizes
    empty clear it."""
    form = await request.post()
    sizes = {name: forms.number(form, name) for name, _ in PACKAGE_SIZES}
    package: dict[str, Any] | None = None
    if any(v is not None for v in sizes.values()):
        package = {"type": str(form.get("type", "PACKAGE")), **sizes}
    values = {f"default_package.{k}": str(form.get(k, "")) for k in ("type", *sizes)}
    return await _change(request, {"default_package": package}, values)


async def set_recipients(request: web.Request) -> web.StreamResponse:
    """Extra recipients of order e-mails (O2), one address a line."""
    form = await request.post()
    raw = str(form.get("extra_order_email_recipients", ""))
    recipients = [line.strip() for line in raw.splitlines() if line.strip()]
    return await _change(
        request,
        {"extra_order_email_recipients": recipients},
        {"extra_order_email_recipients": raw},
    )


async def fresh_token(request: web.Request) -> web.Response:
    """ "Pobierz token REST API": a fresh token, shown once to the seller who asked for it."""
    deps = _deps(request)
    account_id = _account_id(request)
    async with deps.pool.acquire() as conn:
        if await account_store.get(conn, account_id) is None:
            raise web.HTTPNotFound()
    auth = await deps.tokens.refresh(account_id, seen_generation=None)
    log.info("panel_token_fetched", account_id=account_id)
    token = {
        "access_token": auth.access_token,
        "expires_at": datetime.fromtimestamp(auth.expires_at, UTC).isoformat(),
    }
    return await detail_page(request, token=token)


async def delete(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    account_id = _account_id(request)
    if "confirm" not in await request.post():
        return await detail_page(request, errors={"delete": "confirm"}, status=422)
    try:
        async with deps.pool.acquire() as conn, conn.transaction():
            await accounts.delete_account(conn, account_id)
    except accounts.PatchError as exc:
        if exc.status == 404:
            raise web.HTTPNotFound() from None
        return await detail_page(request, errors={"delete": exc.detail}, status=exc.status)
    deps.tokens.forget(account_id)
    raise web.HTTPSeeOther("/panel/accounts?deleted=1")


def add_routes(app: web.Application) -> None:
    """The account pages and their forms."""
    app.router.add_get("/accounts", list_page)
    app.router.add_get("/accounts/add", add_page)
    app.router.add_post("/accounts/connect", connect)
    app.router.add_get("/accounts/{id}", detail_page)
    app.router.add_post("/accounts/{id}/name", rename)
    app.router.add_post("/accounts/{id}/active", set_active)
    app.router.add_post("/accounts/{id}/switches", set_switches)
    app.router.add_post("/accounts/{id}/listing", set_listing)
    app.router.add_post("/accounts/{id}/address", set_address)
    app.router.add_post("/accounts/{id}/recipients", set_recipients)
    app.router.add_post("/accounts/{id}/sender", set_sender)
    app.router.add_post("/accounts/{id}/package", set_package)
    app.router.add_post("/accounts/{id}/token", fresh_token)
    app.router.add_post("/accounts/{id}/delete", delete)
