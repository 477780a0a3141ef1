"""Allegro JSON representations of the emulator's records (nulls kept, money as strings)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from .catalog import EAN_PARAMETER_ID
from .clock import iso
from .models import CheckoutForm, LineItem, Offer, Seller
from .offer_ops import sold_last_30_days
from .state import Marketplace


def money(amount: Decimal, currency: str = "PLN") -> dict[str, str]:
    """``{"amount": "12.34", "currency": "PLN"}``."""
    return {"amount": f"{amount.quantize(Decimal('0.01'))}", "currency": currency}


def _line_item(item: LineItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "offer": {
            "id": item.offer_id,
            "name": item.offer_name,
            "external": {"id": item.external_id} if item.external_id else None,
            "productSet": None,
        },
        "quantity": item.quantity,
        "originalPrice": money(item.original_price or item.price, item.currency),
        "price": money(item.price, item.currency),
        "reconciliation": None,
        "selectedAdditionalServices": [],
        "vouchers": [dict(v) for v in item.vouchers],
        "tax": dict(item.tax) if item.tax is not None else None,
        "boughtAt": iso(item.bought_at),
        "discounts": [{"type": kind} for kind in item.discounts],
    }


def _id_type(country: str) -> str:
    """The ``company.ids[].type`` a buyer's tax id has in their country (the spec's enum)."""
    national = {"PL": "PL_NIP", "CZ": "CZ_DIC", "SK": "SK_IC_DPH", "HU": "HU_ADOSZAM"}
    return national.get(country, "OTHER" if country in ("UA", "GB", "US", "CH", "NO") else "VAT_EU")


def total_to_pay(form: CheckoutForm) -> Decimal:
    """Sum of the line items plus delivery."""
    return sum((i.price * i.quantity for i in form.line_items), Decimal(0)) + form.delivery_cost


def delivery_time(form: CheckoutForm) -> dict[str, Any]:
    """``delivery.time``: delivered one to two days after the purchase, dispatched within a day
    (the deprecated ``guaranteed`` left out, as Allegro does for methods other than Allegro One
    Courier)."""
    start = form.created_at
    return {
        "from": iso(start + timedelta(days=1)),
        "to": iso(start + timedelta(days=2)),
        "dispatch": {"from": iso(start), "to": iso(start + timedelta(days=1))},
    }


def surcharges(form: CheckoutForm, currency: str) -> list[dict[str, Any]]:
    """``surcharges``: the buyer's payment on top, once paid (shaped as a payment)."""
    if form.surcharge is None or form.paid_at is None:
        return []
    return [
        {
            "id": form.surcharge_id,
            "type": "ONLINE",
            "provider": "P24",
            "finishedAt": iso(form.paid_at),
            "paidAmount": money(form.surcharge, currency),
            "reconciliation": None,
            "features": [],
        }
    ]


def line_items_sent(form: CheckoutForm) -> str:
    """``fulfillment.shipmentSummary.lineItemsSent``: ALL once the order is sent or tracking
    numbers cover every line, SOME when they cover some, else NONE."""
    if form.fulfillment_status in ("SENT", "PICKED_UP"):
        return "ALL"
    covered = {i for s in form.shipments for i in s.line_item_ids}
    lines = {i.id for i in form.line_items}
    if lines and lines <= covered:
        return "ALL"
    return "SOME" if covered & lines else "NONE"


def checkout_form(form: CheckoutForm) -> dict[str, Any]:
    """``GET /order/checkout-forms/{id}``. Delivery, payment and invoice data appear only
    once the buyer has filled in the form, as on Allegro."""
    b = form.buyer
    currency = form.line_items[0].currency if form.line_items else "PLN"
    filled = form.filled_in
    payment: dict[str, Any] | None = None
    if filled:
        online = form.payment_type == "ONLINE"
        payment = {
            "id": form.payment_id,
            "type": form.payment_type,
            "provider": "P24" if online else "OFFLINE",
            "finishedAt": iso(form.paid_at),
            "paidAmount": money(total_to_pay(form), currency) if form.paid_at else None,
            "reconciliation": None,
            "features": [],
        }
    delivery: dict[str, Any] | None = None
    if filled:
        delivery = {
            "address": {
                "firstName": b.first_name,
                "lastName": b.last_name,
                "street": b.street,
                "city": b.city,
                "zipCode": b.zip_code,
                "countryCode": b.country_code,
                "companyName": b.company_name,
                "phoneNumber": b.phone,
                "modifiedAt": None,
            },
            "method": {"id": form.delivery_method[0], "name": form.delivery_method[1]},
            "pickupPoint": (
                {
                    "id": "POZ08A",
                    "name": "Paczkomat POZ08A",
                    "description": "Stacja paliw",
                    "address": {
                        "street": "Głogowska 1",
                        "zipCode": "60-001",
                        "city": "Poznań",
                        "countryCode": "PL",
                    },
                }
                if b.pickup_point
                else None
            ),
            "cost": money(form.delivery_cost, currency),
            "time": delivery_time(form),
            "smart": form.smart,
            "cancellation": None,
            "calculatedNumberOfPackages": 1,
        }
    invoice: dict[str, Any] = {"required": False, "address": None, "dueDate": None}
    if filled and b.invoice_required:
        company = None
        natural = None
        if b.company_name:
            ids = b.tax_ids or (
                [{"type": _id_type(b.country_code), "value": b.nip}] if b.nip else []
            )
            company = {
                "name": b.company_name,
                "ids": ids,
                "vatPayerStatus": b.vat_payer_status or ("ACTIVE" if ids else "NOT_APPLICABLE"),
                "taxId": b.tax_id_text if b.tax_id_text is not None else b.nip,
            }
        else:
            natural = {"firstName": b.first_name, "lastName": b.last_name}
        invoice = {
            "required": True,
            "address": {
                "street": b.street,
                "city": b.city,
                "zipCode": b.zip_code,
                "countryCode": b.country_code,
                "company": company,
                "naturalPerson": natural,
            },
            "dueDate": None,
        }
    return {
        "id": form.id,
        "messageToSeller": form.message_to_seller,
        "buyer": {
            "id": b.id,
            "email": b.email,
            "login": b.login,
            "firstName": b.first_name,
            "lastName": b.last_name,
            "companyName": b.company_name,
            "guest": b.guest,
            "personalIdentity": None,
            "phoneNumber": b.phone if filled else None,
            "preferences": {"language": b.language},
            "address": {
                "street": b.street,
                "city": b.city,
                "postCode": b.zip_code,
                "countryCode": b.country_code,
            },
        },
        "payment": payment,
        "status": form.status,
        "fulfillment": {
            "status": form.fulfillment_status,
            "shipmentSummary": {"lineItemsSent": line_items_sent(form)},
        },
        "delivery": delivery,
        "invoice": invoice,
        "lineItems": [_line_item(i) for i in form.line_items],
        "surcharges": surcharges(form, currency),
        # no form-level "discounts": they moved to lineItems[].discounts (2025-05-05)
        "note": None,
        "marketplace": {"id": "allegro-pl"},
        "summary": {"totalToPay": money(total_to_pay(form), currency)},
        "updatedAt": iso(form.updated_at),
        "revision": form.revision,
    }


def order_event_order(form: CheckoutForm) -> dict[str, Any]:
    """The ``order`` part of an order journal event."""
    b = form.buyer
    return {
        "seller": {"id": form.seller_id},
        "buyer": {
            "id": b.id,
            "email": b.email,
            "login": b.login,
            "guest": b.guest,
            "preferences": {"language": b.language},
        },
        "lineItems": [
            {
                "id": i.id,
                "offer": {
                    "id": i.offer_id,
                    "name": i.offer_name,
                    "external": {"id": i.external_id} if i.external_id else None,
                },
                "quantity": i.quantity,
                "originalPrice": money(i.price, i.currency),
                "price": money(i.price, i.currency),
                "boughtAt": iso(i.bought_at),
            }
            for i in form.line_items
        ],
        "checkoutForm": {"id": form.id, "revision": form.revision},
        "marketplace": {"id": "allegro-pl"},
    }


def offer_listing(market: Marketplace, offer: Offer, seller: Seller) -> dict[str, Any]:
    """One entry of ``GET /sale/offers`` (no EAN there, as on Allegro)."""
    live = offer.status in ("ACTIVE", "ACTIVATING")
    auction = offer.format == "AUCTION"
    return {
        "id": offer.id,
        "name": offer.name,
        "category": {"id": offer.category_id},
        "primaryImage": {"url": offer.image_url} if offer.image_url else None,
        "sellingMode": {
            "format": offer.format,
            "price": money(offer.price, offer.currency),
            "minimalPrice": None,
            "startingPrice": money(offer.price, offer.currency) if auction else None,
        },
        "saleInfo": {
            "currentPrice": money(offer.price, offer.currency) if auction else None,
            "biddersCount": 0 if auction else None,
        },
        "stock": {"available": offer.stock, "sold": sold_last_30_days(market, offer)},
        "stats": {"watchersCount": 0, "visitsCount": 0},
        "publication": {
            "status": offer.status,
            "startingAt": iso(offer.starting_at),
            "startedAt": iso(offer.started_at),
            "endingAt": None,
            "endedAt": iso(offer.ended_at) if not live else None,
            "marketplaces": {"base": {"id": "allegro-pl"}, "additional": []},
        },
        "afterSalesServices": {
            "impliedWarranty": {"id": seller.implied_warranties[0]["id"]},
            "returnPolicy": {"id": seller.return_policies[0]["id"]},
            "warranty": None,
        },
        "additionalServices": None,
        "external": {"id": offer.external_id} if offer.external_id else None,
        "delivery": {"shippingRates": {"id": seller.shipping_rates[0]["id"]}},
        "b2b": {"buyableOnlyByBusiness": False},
        "fundraisingCampaign": None,
        "additionalMarketplaces": {},
    }


def offer_images(offer: Offer) -> list[str]:
    """The offer's gallery: what a listing or a PATCH set, else its one image."""
    if offer.details.get("images"):
        return list(offer.details["images"])
    return [offer.image_url] if offer.image_url else []


def product_offer(market: Marketplace, offer: Offer, seller: Seller) -> dict[str, Any]:
    """``GET /sale/product-offers/{id}``; the EAN is product parameter 225693. An offer
    created through ``POST /sale/product-offers`` shows what it was created with."""
    product_params = []
    if offer.ean:
        product_params.append(
            {
                "id": EAN_PARAMETER_ID,
                "name": "EAN (GTIN)",
                "values": [offer.ean],
                "valuesIds": None,
                "rangeValue": None,
            }
        )
    d = offer.details
    # The same EAN maps to the same catalogue product, as on Allegro.
    product_id = d.get("product_id") or str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"allegro-product:{offer.ean or offer.id}")
    )
    params = [
        {
            "id": str(p.get("id") or ""),
            "name": p.get("name"),
            "values": list(p.get("values") or []),
            "valuesIds": p.get("valuesIds"),
            "rangeValue": None,
        }
        for p in d.get("parameters") or []
    ] or [
        {
            "id": "11323",
            "name": "Stan",
            "values": ["Nowy"],
            "valuesIds": ["11323_1"],
            "rangeValue": None,
        }
    ]
    after = d.get("after_sales") or {
        "impliedWarranty": {"id": seller.implied_warranties[0]["id"]},
        "returnPolicy": {"id": seller.return_policies[0]["id"]},
    }
    producer = d.get("responsible_producer")
    product_params += [
        {
            "id": p.get("id"),
            "name": p.get("name"),
            "values": list(p.get("values") or []),
            "valuesIds": None,
            "rangeValue": None,
        }
        for p in d.get("product_parameters") or []
        if p.get("id") != EAN_PARAMETER_ID
    ]
    return {
        "id": offer.id,
        "name": offer.name,
        "productSet": [
            {
                "product": {
                    "id": product_id,
                    "publication": {"status": d.get("product_status") or "LISTED"},
                    "parameters": product_params,
                },
                "quantity": {"value": 1},
                "responsiblePerson": None,
                "responsibleProducer": {"id": producer.get("id") or producer.get("name")}
                if isinstance(producer, dict)
                else None,
                "safetyInformation": d.get("safety_information"),
                "marketedBeforeGPSRObligation": d.get("marketed_before_gpsr"),
            }
        ],
        "category": {"id": offer.category_id},
        "parameters": params,
        "sellingMode": {
            "format": offer.format,
            "price": money(offer.price, offer.currency),
            "minimalPrice": None,
            "startingPrice": None,
        },
        "stock": {"available": offer.stock, "unit": "UNIT"},
        "publication": {
            "status": offer.status,
            "duration": None,
            "startingAt": iso(offer.starting_at),
            "endingAt": None,
            "endedBy": offer.ended_by,
            "republish": False,
            "marketplaces": {"base": {"id": "allegro-pl"}, "additional": []},
        },
        "delivery": {
            "handlingTime": d.get("handling_time") or "PT24H",
            "shippingRates": {"id": d.get("shipping_rates_id") or seller.shipping_rates[0]["id"]},
            "shipmentDate": None,
        },
        "afterSalesServices": {
            "impliedWarranty": after.get("impliedWarranty"),
            "returnPolicy": after.get("returnPolicy"),
            "warranty": after.get("warranty"),
        },
        "payments": {"invoice": "VAT"},
        "location": d.get("location")
        or {
            "city": "Poznań",
            "countryCode": "PL",
            "postCode": "60-166",
            "province": "WIELKOPOLSKIE",
        },
        "images": offer_images(offer),
        "description": d.get("description") or {"sections": []},
        "external": {"id": offer.external_id} if offer.external_id else None,
        "taxSettings": d.get("tax_settings"),
        "b2b": {"buyableOnlyByBusiness": False},
        "language": d.get("language") or "pl-PL",
        "validation": {"errors": [], "warnings": [], "validatedAt": iso(offer.updated_at)},
        "createdAt": iso(offer.created_at),
        "updatedAt": iso(offer.updated_at),
    }
