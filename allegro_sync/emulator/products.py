"""The product catalogue: seeded products with categories and parameters, GTIN search.

``GET /sale/products?phrase=<GTIN>&mode=GTIN`` finds products by GTIN (an EAN-8/13, UPC-A or
GTIN-14, compared after normalising to 14 digits, allegro-2026.md 4, OL#208);
``GET /sale/products/{id}`` reads one. A catalogue product's id is derived from its GTIN, the
same id ``GET /sale/product-offers/{id}`` names for an offer with that EAN. Products proposed
through ``POST /sale/product-offers`` join the catalogue as PROPOSED.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import context
from .auth import scope, seller_caller
from .catalog import CATEGORIES, EAN_PARAMETER_ID
from .errors import ApiError, json_response, validation

# (GTIN, name, leaf category, brand)
SEEDED: tuple[tuple[str, str, str, str], ...] = (
    ("5901234123457", "Smartfon Testowy X1 128 GB czarny", "165", "Testowa"),
    ("5900000000011", "Ładowarka sieciowa USB-C 65 W", "66", "Voltix"),
    ("4006381333931", "Słuchawki bezprzewodowe nauszne BT", "491", "Sonar"),
    ("0012345678905", "Wiertarka udarowa 750 W z walizką", "147", "Majster"),
    ("5905551234568", "Lampa stojąca LED 12 W biała", "5501", "Lumo"),
)


@dataclass
class CatalogueProduct:
    """One product of Allegro's catalogue."""

    id: str
    gtin: str
    name: str
    category_id: str
    parameters: list[dict[str, Any]] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    status: str = "LISTED"  # or PROPOSED (a seller's proposal under review)


def normal_gtin(gtin: str) -> str:
    """A GTIN left-padded to 14 digits, so UPC-A, EAN-13 and GTIN-14 compare equal."""
    return gtin.strip().zfill(14)


def product_id_for(gtin: str) -> str:
    """The catalogue id of the product with this GTIN (stable, as on Allegro)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"allegro-product:{gtin}"))


class Catalogue:
    """The catalogue of one emulator: by id and by normalised GTIN."""

    def __init__(self) -> None:
        self.by_id: dict[str, CatalogueProduct] = {}
        self.by_gtin: dict[str, CatalogueProduct] = {}
        for gtin, name, category, brand in SEEDED:
            self.add(gtin, name, category, brand=brand)

    def add(
        self,
        gtin: str,
        name: str,
        category_id: str,
        *,
        brand: str | None = None,
        images: list[str] | None = None,
        status: str = "LISTED",
        parameters: list[dict[str, Any]] | None = None,
    ) -> CatalogueProduct:
        """Add (or replace) a product."""
        params = [{"id": EAN_PARAMETER_ID, "name": "EAN (GTIN)", "values": [gtin]}]
        if brand is not None:
            params.append({"id": "248811", "name": "Marka", "values": [brand]})
        for extra in parameters or []:
            if str(extra.get("id")) not in {p["id"] for p in params}:
                params.append(extra)
        product = CatalogueProduct(
            id=product_id_for(gtin),
            gtin=gtin,
            name=name,
            category_id=category_id,
            parameters=params,
            images=list(images or [f"https://a.allegroimg.com/original/{gtin}.jpg"]),
            status=status,
        )
        self.by_id[product.id] = product
        self.by_gtin[normal_gtin(gtin)] = product
        return product

    def find_gtin(self, gtin: str) -> CatalogueProduct | None:
        """The product with this GTIN, or None."""
        return self.by_gtin.get(normal_gtin(gtin))


def _category_path(category_id: str) -> list[dict[str, Any]]:
    names = {cid: (name, parent) for cid, name, parent, _ in CATEGORIES}
    path: list[dict[str, Any]] = []
    current: str | None = category_id
    while current is not None and current in names:
        name, parent = names[current]
        path.insert(0, {"id": current, "name": name})
        current = parent
    return path


def product_dto(product: CatalogueProduct) -> dict[str, Any]:
    """``BaseSaleProductResponseDto`` / ``SaleProductDto``."""
    return {
        "id": product.id,
        "name": product.name,
        "category": {"id": product.category_id, "path": _category_path(product.category_id)},
        "images": [{"url": url} for url in product.images],
        "parameters": [
            {
                "id": str(p["id"]),
                "name": p.get("name"),
                "values": list(p.get("values") or []),
                "valuesIds": None,
                "rangeValue": None,
                "unit": None,
                "options": {
                    "identifiesProduct": str(p["id"]) == EAN_PARAMETER_ID,
                    "isGTIN": str(p["id"]) == EAN_PARAMETER_ID,
                },
            }
            for p in product.parameters
        ],
        "publication": {"status": product.status},
    }


async def search_products(request: web.Request) -> web.Response:
    """``GET /sale/products``: by GTIN (``mode=GTIN``) or by a phrase in the name."""
    seller_caller(request, scope("sale:offers:read"))
    catalogue = context.get(request).catalogue
    phrase = (request.query.get("phrase") or request.query.get("ean") or "").strip()
    mode = request.query.get("mode")
    if not phrase:
        raise ApiError(
            400, "VALIDATION_ERROR", "At least ean or phrase parameter is required", path="phrase"
        )
    if mode not in (None, "GTIN", "MPN"):
        raise validation("mode must be GTIN or MPN", "mode")
    if mode == "GTIN" or (mode is None and phrase.isdigit()):
        found = catalogue.find_gtin(phrase) if phrase.isdigit() else None
        products = [found] if found is not None else []
    elif mode == "MPN":
        products = []
    else:
        words = phrase.lower().split()
        products = [p for p in catalogue.by_id.values() if all(w in p.name.lower() for w in words)][
            :30
        ]
    return json_response({"products": [product_dto(p) for p in products], "nextPage": None})


async def get_product(request: web.Request) -> web.Response:
    """``GET /sale/products/{productId}``."""
    seller_caller(request, scope("sale:offers:read"))
    product = context.get(request).catalogue.by_id.get(request.match_info["product_id"])
    if product is None:
        raise ApiError(404, "ProductNotFoundException", "Product not found")
    return json_response(product_dto(product))


def routes() -> list[web.RouteDef]:
    """Catalogue routes."""
    return [
        web.get("/sale/products", search_products),
        web.get("/sale/products/{product_id}", get_product),
    ]
