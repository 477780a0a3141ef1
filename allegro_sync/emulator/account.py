"""``/me``, additional e-mails, after-sales conditions, shipping rates and categories."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import catalog
from .auth import caller, scope, seller_caller
from .clock import iso
from .errors import ApiError, access_denied, json_response, not_found
from .models import Seller
from .params import int_param

AFTER_SALES = {
    "return-policies": ("returnPolicies", "return_policies"),
    "implied-warranties": ("impliedWarranties", "implied_warranties"),
    "warranties": ("warranties", "warranties"),
}


async def me(request: web.Request) -> web.Response:
    """``GET /me``; a token without user context gets 403."""
    seller = caller(request, scope("profile:read")).seller
    if seller is None:
        raise ApiError(403, "AccessDenied", "The token is without user context")
    if seller.blocked:
        raise access_denied()
    company = None
    if seller.company_name:
        company = {"name": seller.company_name, "taxId": seller.tax_id}
    return json_response(
        {
            "id": seller.id,
            "login": seller.login,
            "firstName": seller.first_name,
            "lastName": seller.last_name,
            "email": seller.email,
            "baseMarketplace": {"id": "allegro-pl"},
            "company": company,
            "features": [],
        }
    )


async def additional_emails(request: web.Request) -> web.Response:
    """``GET /account/additional-emails``: addresses the seller may copy messages to."""
    _, seller = seller_caller(request, scope("profile:read"))
    emails = [
        {"id": f"{seller.id}-{i}", "email": email, "createdAt": iso(seller.created_at)}
        for i, email in enumerate(seller.extra_emails, start=1)
    ]
    return json_response({"additional-emails": emails})  # a hyphen, as in every spec


async def after_sales_list(request: web.Request) -> web.Response:
    """After-sales condition lists (limit 1-60, offset 0-59)."""
    _, seller = seller_caller(request, scope("sale:settings:read"))
    key, attr = AFTER_SALES[request.match_info["kind"]]
    limit = int_param(request, "limit", 60, 1, 60)
    offset = int_param(request, "offset", 0, 0, 59)
    items: list[dict[str, Any]] = getattr(seller, attr)
    page = [
        _after_sales_json(seller, attr, item, detail=attr == "return_policies")
        for item in items[offset : offset + limit]
    ]
    return json_response({key: page, "count": len(items)})


def _after_sales_json(
    seller: Seller, attr: str, item: dict[str, Any], *, detail: bool = True
) -> dict[str, Any]:
    """One condition: ``{id, name}`` in the warranty lists, the whole definition in a detail
    and in the return-policy list (``ReturnPolicyResponseV1`` in both, as the spec has it)."""
    if not detail:
        return dict(item)
    body = dict(item)
    body["seller"] = {"id": seller.id}
    if attr == "return_policies":
        body.update(
            {
                "isFulfillment": False,
                "availability": {"range": "FULL", "restrictionCause": None},
                "withdrawalPeriod": "P14D",
                "returnCost": {"coveredBy": "BUYER"},
                "address": {
                    "name": seller.login,
                    "street": "Grunwaldzka 182",
                    "postCode": "60-166",
                    "city": "Poznań",
                    "countryCode": "PL",
                },
                "contact": {"phoneNumber": None, "email": seller.email},
                "options": {
                    "cashOnDeliveryNotAllowed": False,
                    "freeAccessoriesReturnRequired": False,
                    "refundLoweredByReceivedDiscount": False,
                    "businessReturnAllowed": False,
                    "collectBySellerOnly": False,
                },
            }
        )
    return body


async def after_sales_detail(request: web.Request) -> web.Response:
    """One after-sales condition."""
    _, seller = seller_caller(request, scope("sale:settings:read"))
    _, attr = AFTER_SALES[request.match_info["kind"]]
    for item in getattr(seller, attr):
        if item["id"] == request.match_info["id"]:
            return json_response(_after_sales_json(seller, attr, item, detail=True))
    raise not_found()


async def shipping_rates(request: web.Request) -> web.Response:
    """``GET /sale/shipping-rates``."""
    _, seller = seller_caller(request, scope("sale:settings:read"))
    return json_response({"shippingRates": seller.shipping_rates})


async def shipping_rate(request: web.Request) -> web.Response:
    """``GET /sale/shipping-rates/{id}``."""
    _, seller = seller_caller(request, scope("sale:settings:read"))
    for rate in seller.shipping_rates:
        if rate["id"] == request.match_info["id"]:
            return json_response(
                {
                    "id": rate["id"],
                    "name": rate["name"],
                    "rates": [
                        {
                            "deliveryMethod": {"id": "1fa56f79-4b6a-4821-a6f2-ca9c16d5c925"},
                            "maxQuantityPerPackage": 1,
                            "firstItemRate": {"amount": "14.99", "currency": "PLN"},
                            "nextItemRate": {"amount": "0.00", "currency": "PLN"},
                            "shippingTime": None,
                        }
                    ],
                    "lastModified": iso(seller.created_at),
                }
            )
    raise not_found()


async def categories(request: web.Request) -> web.Response:
    """``GET /sale/categories?parent.id=`` (application or user token)."""
    caller(request, None)
    parent = request.query.get("parent.id")
    if parent is not None and catalog.category_dto(parent) is None:
        raise not_found("Category not found")
    return json_response({"categories": catalog.children(parent)})


async def category(request: web.Request) -> web.Response:
    """``GET /sale/categories/{id}``."""
    caller(request, None)
    dto = catalog.category_dto(request.match_info["id"])
    if dto is None:
        raise not_found("Category not found")
    return json_response(dto)


async def category_parameters(request: web.Request) -> web.Response:
    """``GET /sale/categories/{id}/parameters``."""
    caller(request, None)
    if catalog.category_dto(request.match_info["id"]) is None:
        raise not_found("Category not found")
    return json_response({"parameters": catalog.parameters(request.match_info["id"])})


def routes() -> list[web.RouteDef]:
    """Account and settings routes."""
    kinds = "{kind:return-policies|implied-warranties|warranties}"
    return [
        web.get("/me", me),
        web.get("/account/additional-emails", additional_emails),
        web.get(f"/after-sales-service-conditions/{kinds}", after_sales_list),
        web.get(f"/after-sales-service-conditions/{kinds}/{{id}}", after_sales_detail),
        web.get("/sale/shipping-rates", shipping_rates),
        web.get("/sale/shipping-rates/{id}", shipping_rate),
        web.get("/sale/categories", categories),
        web.get("/sale/categories/{id}", category),
        web.get("/sale/categories/{id}/parameters", category_parameters),
    ]
