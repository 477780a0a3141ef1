"""Per-account listing defaults fetched from Allegro (A6, A7) and checks of the user's choices."""

from __future__ import annotations

from typing import Any

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import AllegroNotFound, AllegroRejected

AFTER_SALES_LISTS = {
    "return_policies": ("/after-sales-service-conditions/return-policies", "returnPolicies"),
    "implied_warranties": (
        "/after-sales-service-conditions/implied-warranties",
        "impliedWarranties",
    ),
    "warranties": ("/after-sales-service-conditions/warranties", "warranties"),
}
AFTER_SALES_FIELDS = {
    "return_policy_id": "return_policies",
    "implied_warranty_id": "implied_warranties",
    "warranty_id": "warranties",
}


def _named(items: Any) -> list[dict[str, str]]:
    return [{"id": str(i["id"]), "name": str(i.get("name", ""))} for i in items or []]


async def fetch_options(allegro: AllegroRestClient, account_id: int) -> dict[str, Any]:
    """Everything the user chooses from: after-sales conditions, shipping rates, top categories,
    and the extra e-mail addresses Allegro allows besides the buyer (O2)."""

    async def after_sales(path: str, key: str) -> list[dict[str, str]]:
        body = await allegro.get(
            account_id, path, action="read after-sales conditions", params={"limit": 60}
        )
        return _named(body.get(key))

    # one after another: a refusal stops at the first call and is logged once
    lists = [await after_sales(p, k) for p, k in AFTER_SALES_LISTS.values()]
    rates = await allegro.get(account_id, "/sale/shipping-rates", action="read shipping rates")
    categories = await allegro.get(account_id, "/sale/categories", action="read categories")
    emails = await read_additional_emails(allegro, account_id)
    found: dict[str, Any] = dict(zip(AFTER_SALES_LISTS, lists, strict=True))
    found["shipping_rates"] = _named(rates.get("shippingRates"))
    found["categories"] = [
        {"id": str(c["id"]), "name": str(c.get("name", "")), "leaf": bool(c.get("leaf"))}
        for c in categories.get("categories") or []
    ]
    found["additional_emails"] = emails
    return found


async def read_additional_emails(allegro: AllegroRestClient, account_id: int) -> list[str]:
    """The additional e-mail addresses Allegro allows for the account (``{"additional-emails":
    [{id, email, createdAt}]}``, a hyphen, as the spec has it)."""
    body = await allegro.get(
        account_id, "/account/additional-emails", action="read additional e-mails"
    )
    return [
        str(e["email"])
        for e in body.get("additional-emails") or []
        if isinstance(e, dict) and e.get("email")
    ]


async def validate_choices(
    allegro: AllegroRestClient, account_id: int, given: dict[str, Any]
) -> tuple[str, str] | None:
    """(field, problem) for the first chosen id Allegro does not know for this account."""
    after_sales = given.get("after_sales") or {}
    for field, list_name in AFTER_SALES_FIELDS.items():
        chosen = after_sales.get(field)
        if chosen is None:
            continue
        path, key = AFTER_SALES_LISTS[list_name]
        body = await allegro.get(
            account_id, path, action="read after-sales conditions", params={"limit": 60}
        )
        if chosen not in {str(i["id"]) for i in body.get(key) or []}:
            return (
                f"after_sales.{field}",
                f"no such {list_name.replace('_', ' ')[:-1]} on this account",
            )
    rates_id = given.get("shipping_rates_id")
    if rates_id is not None:
        body = await allegro.get(account_id, "/sale/shipping-rates", action="read shipping rates")
        if rates_id not in {str(r["id"]) for r in body.get("shippingRates") or []}:
            return "shipping_rates_id", "no such shipping rates set on this account"
    category_id = given.get("default_category_id")
    if category_id is not None:
        try:
            category = await allegro.get(
                account_id, f"/sale/categories/{category_id}", action="read category"
            )
        except (AllegroNotFound, AllegroRejected):
            return "default_category_id", "no such category"
        if not category.get("leaf"):
            return "default_category_id", "offers can be listed only in a leaf category"
    return None
