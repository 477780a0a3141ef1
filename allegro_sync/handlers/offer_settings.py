"""Changing one offer by hand (design.md O3, P2, S3): bind or unbind it, and its per-offer
switches ``do_not_renew`` and ``sync_price``.

The rules of ``PATCH /offers/{id}``: a binding by hand sets the flags as a binding by EAN does,
unless the same change gives them. The admin API and the panel call these.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from pydantic import BaseModel, ConfigDict, StrictBool, StringConstraints, ValidationError

from allegro_sync.adapters.postgres import catalog, event_log
from allegro_sync.adapters.postgres import offers as store
from allegro_sync.handlers.offers import BindSettings, announce_binding, binding_flags


class OfferChangeError(Exception):
    """A refused change: ``status`` 422 (invalid) or 404 (no such offer), with the field."""

    def __init__(self, status: int, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.status = status
        self.field = field
        self.detail = detail


class OfferPatch(BaseModel):
    """What a change of an offer accepts; unknown keys and wrong types are refused."""

    model_config = ConfigDict(extra="forbid")
    product_id: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None
    do_not_renew: StrictBool | None = None
    sync_price: StrictBool | None = None


def parse_offer_change(body: object) -> dict[str, Any]:
    """The fields a valid change gives (``product_id`` may be None: unbind)."""
    if not isinstance(body, dict) or not body:
        raise OfferChangeError(422, "body", "expected a JSON object with at least one field")
    try:
        patch = OfferPatch.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "body"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        raise OfferChangeError(422, field, message) from None
    given = patch.model_dump(include=set(body))
    for name in ("do_not_renew", "sync_price"):
        if name in given and given[name] is None:
            raise OfferChangeError(422, name, "may not be null")
    return given


async def change_offer(conn: asyncpg.Connection, offer_id: str, given: dict[str, Any]) -> Any:
    """Apply a validated change in the caller's transaction; the offer row afterwards."""
    offer = await store.offer_for_update(conn, offer_id)
    if offer is None:
        raise OfferChangeError(404, "id", f"no offer {offer_id}")
    account_id = offer["account_id"]
    flags = {k: v for k, v in given.items() if k in ("do_not_renew", "sync_price")}
    if "product_id" in given:
        product_id = given["product_id"]
        if product_id is None and offer["product_id"] is not None:
            await store.unbind(conn, offer_id)
            await event_log.write(
                conn,
                account_id,
                "offers",
                "info",
                "offer_unbound",
                f"Offer {offer_id} unbound from product {offer['product_id']} by hand.",
                details={"offer_id": offer_id, "product_id": offer["product_id"]},
            )
        elif product_id is not None and product_id != offer["product_id"]:
            product = await catalog.get_product(conn, product_id)
            if product is None:
                raise OfferChangeError(422, "product_id", f"no product {product_id}")
            account = await store.binding_settings(conn, account_id)
            assert account is not None  # the offer's foreign key keeps it
            defaults = binding_flags(BindSettings.of(account), datetime.now(UTC))
            await store.bind(
                conn,
                offer_id,
                product_id,
                sync_price=flags.get("sync_price", defaults.sync_price),
                do_not_renew=flags.get("do_not_renew", defaults.do_not_renew),
                only_if_unbound=False,
            )
            await announce_binding(
                conn,
                account_id,
                offer_id,
                product_id,
                offer["ean"] or product["ean"],
                how="by hand",
            )
            flags = {}
    if flags:
        await store.set_flags(conn, offer_id, flags)
    return await store.get_offer(conn, offer_id)
