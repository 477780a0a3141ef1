"""``POST /sale/product-offers``: an offer created from a catalogue product or a proposal.

Validated as Allegro does (allegro-api.md 8.2, 10; the spec's ``SaleProductOfferRequestV1``),
every problem found at once in one 422 of Allegro's error objects:

- ``productSet[].product``: a catalogue product by UUID, or by GTIN (``idType: GTIN``); a GTIN
  the catalogue lacks needs a product proposal (name, category, parameters, images) in the same
  element, which joins the catalogue as PROPOSED; without one: ``ProductNotFoundException``.
- GPSR (since Dec 2024): ``responsibleProducer`` and ``safetyInformation`` on every element,
  unless ``marketedBeforeGPSRObligation`` is true.
- the category (the body's, else the product's) must exist and be a leaf; every parameter the
  category marks ``required`` must be given (offer or product parameters, by id or name).
- after-sales conditions and shipping rates by id or name; omitted, the ones named "default"
  (allegro-api.md 10); location (city, post code, country) is required.
- images (the gallery and the description's IMAGE items): checked as ``PATCH`` checks them
  (``images.gallery_errors``): at most 16, links with a host; https links off Allegro's image
  host are fetched by Allegro (allegro-api.md 8.2: "External URLs are allowed ... Allegro
  downloads them"), a plain-http link or one whose host does not resolve is refused
  (``OfferImagesNotAvailableException``): upload it through ``POST /sale/images`` first,
  which takes any link or the bytes.

Answers 201 with the offer, or (switch ``create_offer_async``) 202 + ``Location`` of the
operation + ``Retry-After``: the offer exists at once (INACTIVE, or ACTIVATING when ACTIVE was
asked for) and becomes ACTIVE, with OFFER_ACTIVATED in the journal, when the operation is done.
Writes count against the seller's product-offer limit (2 490 a minute, 74 700 an hour): 429.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from . import context
from .auth import scope, seller_caller
from .catalog import EAN_PARAMETER_ID, category_dto, parameters
from .context import Emulator
from .errors import ApiError, error_entry, json_response
from .images import gallery_errors
from .models import Offer, OfferOperation, Seller
from .offer_ops import activate_offer, create_offer
from .orders import read_json
from .product_offers import GTIN_LENGTHS, _operation_url, _retry_after, check_write_limit
from .products import CatalogueProduct
from .views import product_offer


class ListingErrors(ApiError):
    """422 with one Allegro error object per problem."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        first = entries[0]
        super().__init__(422, first["code"], first["message"], path=first["path"])
        self.entries = entries

    def body(self) -> dict[str, Any]:
        """``{"errors": [...]}``."""
        return {"errors": self.entries}


def _entry(code: str, message: str, path: str | None, **metadata: str) -> dict[str, Any]:
    entry = error_entry(code, message, path)
    entry["metadata"] = metadata
    return entry


def _by_id_or_name(items: list[dict[str, Any]], ref: Any) -> dict[str, Any] | None:
    if not isinstance(ref, dict) or not (ref.get("id") or ref.get("name")):
        return next((i for i in items if i.get("name") == "default"), None)
    if ref.get("id"):
        return next((i for i in items if i["id"] == ref["id"]), None)
    return next((i for i in items if i.get("name") == ref["name"]), None)


def _settings(seller: Seller, body: dict[str, Any], errors: list[dict[str, Any]]) -> Any:
    after = body.get("afterSalesServices") or {}
    chosen: dict[str, Any] = {}
    for key, items, code in (
        ("returnPolicy", seller.return_policies, "ReturnPolicyNotFoundException"),
        ("impliedWarranty", seller.implied_warranties, "ImpliedWarrantyNotFoundException"),
    ):
        found = _by_id_or_name(items, after.get(key))
        if found is None:
            errors.append(
                _entry(code, f"{key} not found in your settings", f"afterSalesServices.{key}")
            )
        else:
            chosen[key] = {"id": found["id"]}
    warranty = after.get("warranty")
    if isinstance(warranty, dict) and (warranty.get("id") or warranty.get("name")):
        found = _by_id_or_name(seller.warranties, warranty)
        if found is None:
            errors.append(
                _entry(
                    "WarrantyNotFoundException",
                    "warranty not found in your settings",
                    "afterSalesServices.warranty",
                )
            )
        else:
            chosen["warranty"] = {"id": found["id"]}
    rates_ref = (body.get("delivery") or {}).get("shippingRates")
    rates = _by_id_or_name(seller.shipping_rates, rates_ref)
    if rates is None:
        errors.append(
            _entry(
                "ShippingRatesNotFoundException",
                "Shipping rates not found in your settings",
                "delivery.shippingRates",
            )
        )
    location = body.get("location") or {}
    missing = [k for k in ("city", "countryCode", "postCode") if not location.get(k)]
    if missing:
        errors.append(
            _entry(
                "LocationRequiredException",
                "The item location is required: " + ", ".join(missing),
                "location",
            )
        )
    return chosen, rates


def _param_given(param: dict[str, Any], given: list[dict[str, Any]]) -> bool:
    return any(
        (str(p.get("id") or "") == param["id"] or p.get("name") == param["name"])
        and bool(p.get("values") or p.get("valuesIds") or p.get("rangeValue"))
        for p in given
    )


def _category(
    body: dict[str, Any], product: CatalogueProduct | None, errors: list[dict[str, Any]]
) -> str | None:
    category_id = ((body.get("category") or {}).get("id")) or (
        product.category_id if product is not None else None
    )
    if category_id is None:
        errors.append(_entry("CATEGORY_NOT_EXISTS", "The category is required", "category.id"))
        return None
    dto = category_dto(str(category_id))
    if dto is None:
        errors.append(
            _entry(
                "CATEGORY_NOT_EXISTS",
                f"Category {category_id} does not exist",
                "category.id",
                categoryId=str(category_id),
            )
        )
        return None
    if not dto["leaf"]:
        errors.append(
            _entry(
                "INVALID_CATEGORY_ID",
                f"Category {category_id} is not a leaf category: offers can be listed only in "
                "leaf categories",
                "category.id",
                categoryId=str(category_id),
            )
        )
        return None
    return str(category_id)


def _gpsr(element: dict[str, Any], path: str, errors: list[dict[str, Any]]) -> None:
    if element.get("marketedBeforeGPSRObligation") is True:
        return
    producer = element.get("responsibleProducer")
    if not isinstance(producer, dict) or not (producer.get("id") or producer.get("name")):
        errors.append(
            _entry(
                "ResponsibleProducerRequiredException",
                "The responsible producer (GPSR) is required for the product",
                f"{path}.responsibleProducer",
            )
        )
    safety = element.get("safetyInformation")
    if not isinstance(safety, dict) or safety.get("type") not in ("TEXT", "ATTACHMENTS"):
        errors.append(
            _entry(
                "SafetyInformationRequiredException",
                "The product's safety information (GPSR) is required",
                f"{path}.safetyInformation",
            )
        )


def _product(
    emulator: Emulator, element: dict[str, Any], path: str, errors: list[dict[str, Any]]
) -> tuple[CatalogueProduct | None, dict[str, Any] | None]:
    """The catalogue product an element names, or the proposal it carries (validated later)."""
    product = element.get("product") or {}
    catalogue = emulator.catalogue
    ref, id_type = product.get("id"), product.get("idType")
    if ref and id_type == "GTIN":
        gtin = str(ref)
        if not gtin.isdigit() or len(gtin) not in GTIN_LENGTHS:
            errors.append(
                _entry("NotStandardLengthInGtinParameter", "Invalid GTIN", f"{path}.product.id")
            )
            return None, None
        found = catalogue.find_gtin(gtin)
        if found is not None:
            return found, None
        if product.get("name") and product.get("parameters"):
            return None, product
        errors.append(
            _entry(
                "ProductNotFoundException",
                f"No product with GTIN {gtin} in the catalogue; send a product proposal (name, "
                "category, parameters, images) to create one",
                f"{path}.product.id",
                productId=gtin,
            )
        )
        return None, None
    if ref:
        found = catalogue.by_id.get(str(ref))
        if found is None:
            errors.append(
                _entry(
                    "ProductNotFoundException",
                    f"Product {ref} not found",
                    f"{path}.product.id",
                    productId=str(ref),
                )
            )
        return found, None
    if product.get("name"):
        return None, product
    errors.append(
        _entry(
            "ProductNotFoundException",
            "Give a product id (UUID or GTIN) or a complete product definition",
            f"{path}.product",
        )
    )
    return None, None


def _proposal_gtin(proposal: dict[str, Any]) -> str | None:
    if proposal.get("idType") == "GTIN" and proposal.get("id"):
        return str(proposal["id"])
    for p in proposal.get("parameters") or []:
        if str(p.get("id")) == EAN_PARAMETER_ID and p.get("values"):
            return str(p["values"][0])
    return None


def _check_proposal(
    proposal: dict[str, Any], category_id: str | None, path: str, errors: list[dict[str, Any]]
) -> None:
    if not proposal.get("images"):
        errors.append(
            _entry(
                "MissingProductImages",
                "A product proposal needs at least one image",
                f"{path}.product.images",
            )
        )
    if category_id is None:
        return
    given = list(proposal.get("parameters") or [])
    for param in parameters(category_id):
        if param["requiredForProduct"] and not _param_given(param, given):
            errors.append(
                _entry(
                    "MissingRequiredParameters",
                    f"Missing required product parameter: {param['name']} ({param['id']})",
                    f"{path}.product.parameters",
                    parameterId=param["id"],
                    parameterName=param["name"],
                )
            )


def _images(body: dict[str, Any], errors: list[dict[str, Any]]) -> list[str]:
    """The gallery and the description's images, checked as ``PATCH`` checks them
    (``gallery_errors``)."""
    value = body.get("images")
    images: list[str] = []
    if value is not None:
        problems = gallery_errors(value)
        errors.extend(problems)
        if not problems:
            images = [str(i) for i in value]
    description = body.get("description")
    sections = description.get("sections") if isinstance(description, dict) else None
    for s, section in enumerate(sections if isinstance(sections, list) else []):
        items = section.get("items") if isinstance(section, dict) else None
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and item.get("type") == "IMAGE" and "url" in item:
                path = f"description.sections[{s}].items[{i}].url"
                errors.extend(gallery_errors([item["url"]], path))
    return images


def _price(body: dict[str, Any], errors: list[dict[str, Any]]) -> tuple[Decimal, str]:
    price = ((body.get("sellingMode") or {}).get("price")) or {}
    try:
        amount = Decimal(str(price.get("amount")))
        if amount <= 0 or not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        errors.append(
            _entry(
                "VALIDATION_ERROR",
                "A Buy Now offer needs a positive price",
                "sellingMode.price.amount",
            )
        )
        amount = Decimal("0")
    return amount, str(price.get("currency") or "PLN")


def _validate(emulator: Emulator, seller: Seller, body: dict[str, Any]) -> dict[str, Any]:
    """Everything the offer needs, or ListingErrors with every problem."""
    errors: list[dict[str, Any]] = []
    elements = body.get("productSet") or []
    if not elements:
        raise ListingErrors([_entry("VALIDATION_ERROR", "productSet is required", "productSet")])
    found: list[tuple[CatalogueProduct | None, dict[str, Any] | None]] = []
    for n, element in enumerate(elements):
        path = f"productSet[{n}]"
        found.append(_product(emulator, element or {}, path, errors))
        _gpsr(element or {}, path, errors)
    main, proposal = found[0]
    category_id = _category(body, main, errors)
    if category_id is None and proposal is not None:
        category_id = _category({"category": proposal.get("category")}, None, [])
    for n, (_, prop) in enumerate(found):
        if prop is not None:
            _check_proposal(prop, category_id, f"productSet[{n}]", errors)
    offer_params = list(body.get("parameters") or [])
    product_params = list((main.parameters if main else (proposal or {}).get("parameters")) or [])
    if category_id is not None:
        for param in parameters(category_id):
            if param["required"] and not _param_given(param, offer_params + product_params):
                errors.append(
                    _entry(
                        "MissingRequiredParameters",
                        f"Missing required parameter: {param['name']} ({param['id']})",
                        "parameters",
                        parameterId=param["id"],
                        parameterName=param["name"],
                    )
                )
    name = body.get("name") or (main.name if main else (proposal or {}).get("name"))
    if not name:
        errors.append(_entry("VALIDATION_ERROR", "The offer needs a name", "name"))
    images = _images(body, errors)
    after_sales, rates = _settings(seller, body, errors)
    price, currency = _price(body, errors)
    stock = int((body.get("stock") or {}).get("available") or 0)
    status = (body.get("publication") or {}).get("status") or "INACTIVE"
    if status not in ("ACTIVE", "INACTIVE"):
        errors.append(
            _entry(
                "VALIDATION_ERROR",
                "publication.status must be ACTIVE or INACTIVE",
                "publication.status",
            )
        )
    if status == "ACTIVE" and stock < 1:
        errors.append(
            _entry(
                "PublicationValidationException.IncorrectStock",
                "An offer can be activated only with stock greater than 0.",
                "stock.available",
            )
        )
    if errors:
        raise ListingErrors(errors)
    return {
        "main": main,
        "proposal": proposal,
        "category_id": category_id,
        "name": str(name)[:75],
        "images": images or (main.images if main else list((proposal or {}).get("images") or [])),
        "after_sales": after_sales,
        "rates": rates,
        "price": price,
        "currency": currency,
        "stock": stock,
        "status": status,
        "offer_params": offer_params,
    }


def _details(body: dict[str, Any], found: dict[str, Any], product_id: str) -> dict[str, Any]:
    element = (body.get("productSet") or [{}])[0] or {}
    safety = element.get("safetyInformation")
    return {
        "product_id": product_id,
        "product_status": "PROPOSED" if found["proposal"] is not None else "LISTED",
        "parameters": found["offer_params"],
        "images": found["images"],
        "description": body.get("description") or {"sections": []},
        "after_sales": found["after_sales"],
        "shipping_rates_id": found["rates"]["id"],
        "handling_time": (body.get("delivery") or {}).get("handlingTime") or "PT24H",
        "location": body.get("location"),
        "responsible_producer": element.get("responsibleProducer"),
        "safety_information": safety,
        "marketed_before_gpsr": element.get("marketedBeforeGPSRObligation"),
        "tax_settings": body.get("taxSettings"),
        "language": body.get("language") or "pl-PL",
    }


async def create_product_offer(request: web.Request) -> web.Response:
    """``POST /sale/product-offers``: 201, or 202 + Location + Retry-After (switch)."""
    _, seller = seller_caller(request, scope("sale:offers:write"))
    emulator = context.get(request)
    check_write_limit(emulator, seller)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "VALIDATION_ERROR", "Body must be an object")
    found = _validate(emulator, seller, body)
    main: CatalogueProduct | None = found["main"]
    if main is None:
        proposal = found["proposal"]
        gtin = _proposal_gtin(proposal) or emulator.market.ids.hex(13)
        main = emulator.catalogue.add(
            gtin,
            str(proposal["name"])[:75],
            found["category_id"],
            images=[str(i) for i in proposal.get("images") or []],
            status="PROPOSED",
            parameters=[p for p in proposal.get("parameters") or [] if p.get("id")],
        )
    asynchronous = emulator.config.switches.create_offer_async
    wanted = found["status"]
    market = emulator.market
    offer = create_offer(
        market,
        seller,
        name=found["name"],
        stock=found["stock"],
        price=found["price"],
        currency=found["currency"],
        image_url=found["images"][0] if found["images"] else None,
        external_id=((body.get("external") or {}).get("id")),
        ean=main.gtin,
        status="ACTIVATING" if asynchronous and wanted == "ACTIVE" else wanted,
        category_id=found["category_id"],
    )
    offer.details = _details(body, found, main.id)
    if not asynchronous:
        return json_response(product_offer(market, offer, seller), status=201)
    operation = _start_creation(emulator, offer, activate=wanted == "ACTIVE")
    headers = {
        "Location": _operation_url(request, emulator, operation),
        "Retry-After": _retry_after(emulator, operation),
    }
    return json_response(product_offer(market, offer, seller), status=202, headers=headers)


def _start_creation(emulator: Emulator, offer: Offer, *, activate: bool) -> OfferOperation:
    market = emulator.market
    now = market.now()
    operation = OfferOperation(
        id=market.ids.uuid(),
        offer_id=offer.id,
        seller_id=offer.seller_id,
        started_at=now,
        done_at=now + timedelta(seconds=emulator.config.create_processing_seconds),
    )
    market.operations[operation.id] = operation
    market.pending_edits[offer.id] = operation

    def finish() -> None:
        operation.completed_at = market.now()
        if market.pending_edits.get(offer.id) is operation:
            del market.pending_edits[offer.id]
        if activate and offer.status == "ACTIVATING" and not offer.archived:
            offer.status = "INACTIVE"  # activate_offer publishes a draft
            activate_offer(market, offer)

    market.timers.at(operation.done_at.timestamp(), finish)
    return operation


def routes() -> list[web.RouteDef]:
    """The product-offer creation route."""
    return [web.post("/sale/product-offers", create_product_offer)]
