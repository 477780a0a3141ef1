"""Static marketplace data: a small category tree with parameters, and per-seller settings."""

from __future__ import annotations

from typing import Any

from .ids import IdFactory

EAN_PARAMETER_ID = "225693"

# (id, name, parent id, leaf)
CATEGORIES: tuple[tuple[str, str, str | None, bool], ...] = (
    ("2", "Elektronika", None, False),
    ("3", "Dom i Ogród", None, False),
    ("4", "Telefony i Akcesoria", "2", False),
    ("165", "Smartfony i telefony komórkowe", "4", True),
    ("66", "Ładowarki", "4", True),
    ("491", "Słuchawki", "2", True),
    ("1532", "Narzędzia", "3", False),
    ("147", "Wiertarki", "1532", True),
    ("5501", "Oświetlenie", "3", True),
)

DEFAULT_CATEGORY = "165"


def category_dto(category_id: str) -> dict[str, Any] | None:
    """A category as ``GET /sale/categories/{id}`` returns it."""
    for cid, name, parent, leaf in CATEGORIES:
        if cid == category_id:
            return {
                "id": cid,
                "name": name,
                "leaf": leaf,
                "parent": {"id": parent} if parent else None,
                "options": {  # CategoryOptionsDto of the 2026 spec, nothing more
                    "advertisement": False,
                    "offersWithProductPublicationEnabled": True,
                    "productCreationEnabled": True,
                    "sellerCanRequirePurchaseComments": False,
                },
            }
    return None


def children(parent_id: str | None) -> list[dict[str, Any]]:
    """The categories directly under ``parent_id`` (the roots when None)."""
    out = []
    for cid, _name, parent, _leaf in CATEGORIES:
        if parent == parent_id:
            dto = category_dto(cid)
            assert dto is not None
            out.append(dto)
    return out


def parameters(category_id: str) -> list[dict[str, Any]]:
    """Category parameters: EAN (product-level), brand, condition (required), a conditional one."""
    return [
        {
            "id": EAN_PARAMETER_ID,
            "name": "EAN (GTIN)",
            "type": "string",
            "required": False,
            "requiredForProduct": False,
            "requiredIf": None,
            "displayedIf": None,
            "unit": None,
            "options": {
                "describesProduct": True,
                "variantsAllowed": False,
                "variantsEqual": False,
                "customValuesEnabled": False,
                "ambiguousValueId": None,
                "dependsOnParameterId": None,
            },
            "restrictions": {"minLength": 8, "maxLength": 14, "allowedNumberOfValues": 1},
        },
        {
            "id": "11323",
            "name": "Stan",
            "type": "dictionary",
            "required": True,
            "requiredForProduct": False,
            "requiredIf": None,
            "displayedIf": None,
            "unit": None,
            "options": {
                "describesProduct": False,
                "variantsAllowed": False,
                "variantsEqual": False,
                "customValuesEnabled": False,
                "ambiguousValueId": None,
                "dependsOnParameterId": None,
            },
            "dictionary": [
                {"id": "11323_1", "value": "Nowy", "dependsOnValueIds": []},
                {"id": "11323_2", "value": "Używany", "dependsOnValueIds": []},
            ],
            "restrictions": {"multipleChoices": False},
        },
        {
            "id": "248811",
            "name": "Marka",
            "type": "string",
            "required": False,
            "requiredForProduct": True,
            "requiredIf": {
                "parametersWithValue": [{"id": "11323", "oneOfValueIds": ["11323_1"]}],
                "parametersWithoutValue": [],
            },
            "displayedIf": None,
            "unit": None,
            "options": {
                "describesProduct": True,
                "variantsAllowed": False,
                "variantsEqual": False,
                "customValuesEnabled": False,
                "ambiguousValueId": None,
                "dependsOnParameterId": None,
            },
            "restrictions": {"minLength": 1, "maxLength": 40, "allowedNumberOfValues": 1},
        },
    ]


def seller_settings(ids: IdFactory) -> dict[str, list[dict[str, Any]]]:
    """After-sales conditions and shipping-rate sets a new seller starts with."""
    return {
        "return_policies": [
            {"id": ids.uuid(), "name": "default"},
            {"id": ids.uuid(), "name": "Zwrot 30 dni"},
        ],
        "implied_warranties": [{"id": ids.uuid(), "name": "default"}],
        "warranties": [
            {"id": ids.uuid(), "name": "Gwarancja producenta 24 mies."},
        ],
        "shipping_rates": [
            {"id": ids.uuid(), "name": "default"},
            {"id": ids.uuid(), "name": "Gabaryty"},
        ],
    }
