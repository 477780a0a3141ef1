"""The body of ``POST /sale/product-offers`` for one product on one account (pure).

From the product (the ERP's data, ``catalog.get_listing_product``): name, EAN, description,
images, parameters, category, GPSR data, tax settings. From the account (A6, A7): after-sales
conditions, shipping rates, item location, default category. From the request: price,
currency, quantity, category, publish.

The catalogue product is named by its EAN (``productSet[].product {id, idType: GTIN}``), so no
look-up is needed where the catalogue has it. Where it does not, Allegro answers 422
``ProductNotFoundException``; the listing then sends ``with_proposal=True``: the same product
with the ERP's name, category, parameters and images, which Allegro takes as a proposal of a
new catalogue product. Without the data a proposal needs, the refusal stands.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MAX_NAME = 75
MAX_IMAGES = 16
MAX_EXTERNAL_ID = 100


@dataclass(frozen=True)
class ListingTerms:
    """What the ERP asked for: the offer's commercial terms."""

    price: Decimal
    currency: str
    quantity: int
    category_id: str | None
    publish: bool


def external_id_for(product_id: str) -> str:
    """The offer's ``external.id``: the product id (the seller's signature, as the ERP knows
    it), or a digest of it when longer than Allegro's 100 characters."""
    if len(product_id) <= MAX_EXTERNAL_ID:
        return product_id
    return "sha256:" + hashlib.sha256(product_id.encode()).hexdigest()[:64]


def category_for(
    terms: ListingTerms, product: Mapping[str, Any], account: Mapping[str, Any]
) -> str | None:
    """The request's category, else the product's, else the account's default (A7)."""
    return terms.category_id or product["category_id"] or account["default_category_id"]


def product_images(product: Mapping[str, Any]) -> list[str]:
    """The product's images (the first is the main one); the old ``image_url`` alone when the
    ERP sent no list."""
    images = product["images"]
    if images is None:
        images = [product["image_url"]] if product["image_url"] else []
    return [str(url) for url in images][:MAX_IMAGES]


def needs_upload(url: str) -> bool:
    """Whether Allegro cannot take the link as it is: it downloads https links itself
    (allegro-api.md 8.2), anything else goes through ``POST /sale/images`` first."""
    return not url.startswith("https://")


def _parameters(product: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for param in product["parameters"] or []:
        entry: dict[str, Any] = {"values": [str(v) for v in param.get("values") or []]}
        if param.get("id"):
            entry["id"] = str(param["id"])
        elif param.get("name"):
            entry["name"] = str(param["name"])
        else:
            continue
        out.append(entry)
    return out


def can_propose(product: Mapping[str, Any], category_id: str | None, images: list[str]) -> bool:
    """Whether the ERP data makes a product proposal (name, category, parameters, images)."""
    return bool(product["name"] and category_id and product["parameters"] and images)


def build_offer_body(
    product: Mapping[str, Any],
    account: Mapping[str, Any],
    terms: ListingTerms,
    *,
    external_id: str,
    images: list[str],
    with_proposal: bool = False,
) -> dict[str, Any]:
    """``SaleProductOfferRequestV1`` for the product; ``images`` are links Allegro can take."""
    category_id = category_for(terms, product, account)
    parameters = _parameters(product)
    catalogue_ref: dict[str, Any] = {"id": str(product["ean"]), "idType": "GTIN"}
    if with_proposal:
        catalogue_ref.update(
            name=str(product["name"])[:MAX_NAME],
            category={"id": category_id},
            parameters=parameters,
            images=images,
        )
    element: dict[str, Any] = {"product": catalogue_ref}
    if product["responsible_producer_id"]:
        element["responsibleProducer"] = {"type": "ID", "id": product["responsible_producer_id"]}
    safety = product["safety_information"]
    # NO_SAFETY_INFORMATION is not a value the request takes (only answers show it): omitted
    if isinstance(safety, dict) and safety.get("type") in ("TEXT", "ATTACHMENTS"):
        element["safetyInformation"] = safety
    body: dict[str, Any] = {
        "name": str(product["name"])[:MAX_NAME],
        "productSet": [element],
        "sellingMode": {
            "format": "BUY_NOW",
            "price": {"amount": f"{terms.price:.2f}", "currency": terms.currency},
        },
        "stock": {"available": terms.quantity, "unit": "UNIT"},
        "publication": {"status": "ACTIVE" if terms.publish else "INACTIVE"},
        "external": {"id": external_id},
    }
    if category_id:
        body["category"] = {"id": category_id}
    if parameters:
        body["parameters"] = parameters
    if images:
        body["images"] = images
    if product["description"]:
        body["description"] = product["description"]
    if product["tax_settings"]:
        body["taxSettings"] = {k: v for k, v in product["tax_settings"].items() if v is not None}
    after_sales = _after_sales(account["after_sales"])
    if after_sales:
        body["afterSalesServices"] = after_sales
    if account["shipping_rates_id"]:
        body["delivery"] = {"shippingRates": {"id": account["shipping_rates_id"]}}
    location = _location(account["address"])
    if location:
        body["location"] = location
    return body


def _after_sales(chosen: Mapping[str, Any] | None) -> dict[str, Any]:
    """The account's conditions (A6); those not chosen are left to Allegro's "default"."""
    out: dict[str, Any] = {}
    for field, key in (
        ("return_policy_id", "returnPolicy"),
        ("implied_warranty_id", "impliedWarranty"),
        ("warranty_id", "warranty"),
    ):
        if chosen and chosen.get(field):
            out[key] = {"id": chosen[field]}
    return out


def _location(address: Mapping[str, Any] | None) -> dict[str, Any]:
    """The account's address as the item location (A6)."""
    if not address or not address.get("city"):
        return {}
    location = {
        "city": address["city"],
        "countryCode": address.get("country_code") or "PL",
        "postCode": address.get("post_code"),
    }
    if address.get("province"):
        location["province"] = address["province"]
    return {k: v for k, v in location.items() if v}
