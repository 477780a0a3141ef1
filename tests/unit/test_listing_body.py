"""The body of POST /sale/product-offers built from a product and an account (pure)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from allegro_sync.handlers.listing_body import (
    ListingTerms,
    build_offer_body,
    can_propose,
    category_for,
    external_id_for,
    needs_upload,
    product_images,
)

PRODUCT: dict[str, Any] = {
    "id": "P1",
    "ean": "5901234123457",
    "name": "Kubek ceramiczny 300 ml biały",
    "image_url": "https://img.example/old.jpg",
    "images": None,
    "description": {"sections": [{"items": [{"type": "TEXT", "content": "<p>Kubek</p>"}]}]},
    "parameters": [
        {"id": "11323", "name": None, "values": ["Nowy"]},
        {"name": "Kolor", "values": ["biały"]},
    ],
    "category_id": None,
    "responsible_producer_id": "rp-1",
    "safety_information": {"type": "NO_SAFETY_INFORMATION"},
    "tax_settings": {"rates": [{"rate": "23.00", "countryCode": "PL"}], "subject": "GOODS"},
}
ACCOUNT: dict[str, Any] = {
    "default_category_id": "5501",
    "after_sales": {"return_policy_id": "rp", "implied_warranty_id": None, "warranty_id": "w"},
    "shipping_rates_id": "rates-1",
    "address": {"city": "Kraków", "post_code": "30-001", "country_code": "PL", "province": None},
}
TERMS = ListingTerms(Decimal("9.9"), "PLN", 4, None, False)


def test_the_body_names_the_catalogue_product_and_carries_the_account_defaults() -> None:
    body = build_offer_body(PRODUCT, ACCOUNT, TERMS, external_id="P1", images=["https://i/1"])
    assert body["productSet"] == [
        {
            "product": {"id": "5901234123457", "idType": "GTIN"},
            "responsibleProducer": {"type": "ID", "id": "rp-1"},
        }
    ]
    assert body["sellingMode"]["price"] == {"amount": "9.90", "currency": "PLN"}
    assert body["publication"] == {"status": "INACTIVE"}
    assert body["category"] == {"id": "5501"}  # A7: the account's default
    assert body["afterSalesServices"] == {"returnPolicy": {"id": "rp"}, "warranty": {"id": "w"}}
    assert body["delivery"] == {"shippingRates": {"id": "rates-1"}}
    assert body["location"] == {"city": "Kraków", "countryCode": "PL", "postCode": "30-001"}
    assert body["parameters"] == [
        {"values": ["Nowy"], "id": "11323"},
        {"values": ["biały"], "name": "Kolor"},
    ]
    assert body["taxSettings"] == PRODUCT["tax_settings"]
    assert body["external"] == {"id": "P1"}


def test_a_proposal_carries_the_erp_data() -> None:
    body = build_offer_body(
        PRODUCT, ACCOUNT, TERMS, external_id="P1", images=["https://i/1"], with_proposal=True
    )
    product = body["productSet"][0]["product"]
    assert product["name"] == PRODUCT["name"] and product["category"] == {"id": "5501"}
    assert product["images"] == ["https://i/1"] and len(product["parameters"]) == 2
    assert can_propose(PRODUCT, "5501", ["https://i/1"])
    assert not can_propose(PRODUCT, "5501", [])


def test_the_category_is_the_requests_then_the_products_then_the_accounts() -> None:
    assert category_for(TERMS, {"category_id": "165"}, ACCOUNT) == "165"
    terms = ListingTerms(Decimal(1), "PLN", 1, "66", True)
    assert category_for(terms, {"category_id": "165"}, ACCOUNT) == "66"
    assert category_for(TERMS, {"category_id": None}, {"default_category_id": None}) is None


def test_images_and_external_ids() -> None:
    assert product_images(PRODUCT) == ["https://img.example/old.jpg"]
    assert product_images({**PRODUCT, "images": []}) == []
    assert needs_upload("http://erp.local/a.jpg") and not needs_upload("https://x/a.jpg")
    assert external_id_for("P1") == "P1"
    long_id = external_id_for("x" * 150)
    assert len(long_id) <= 100 and long_id == external_id_for("x" * 150)
