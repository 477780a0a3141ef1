"""The spec validator's rules, on schemas of the vendored subset."""

from __future__ import annotations

from typing import Any

import pytest

from allegro_sync.emulator.openapi import subset

PRICE = {"$ref": "#/components/schemas/OfferPriceChangeCommand"}
FORM = {"$ref": "#/components/schemas/CheckoutForm"}
CRITERIA = [{"type": "CONTAINS_OFFERS", "offers": [{"id": "7610768778"}]}]


def _found(schema: Any, value: Any, **kw: Any) -> list[str]:
    return [str(v) for v in subset().validate(schema, value, **kw)]


def test_a_discriminator_on_a_base_schema_picks_the_subtype_its_tag_names() -> None:
    fixed = {"type": "FIXED_PRICE", "price": {"amount": "10.50", "currency": "PLN"}}
    assert _found(PRICE, {"modification": fixed, "offerCriteria": CRITERIA}, strict=True) == []
    # the INCREASE_PRICE field on a FIXED_PRICE modification is not FIXED_PRICE's
    wrong = {"type": "FIXED_PRICE", "value": {"amount": "1.00", "currency": "PLN"}}
    assert _found(PRICE, {"modification": wrong, "offerCriteria": CRITERIA}, strict=True) == [
        "modification.value: property not in the spec"
    ]
    unknown = {"type": "SET_PRICE"}
    [problem] = _found(PRICE, {"modification": unknown, "offerCriteria": CRITERIA})
    assert problem.startswith("modification.type: 'SET_PRICE' is not one of [FIXED_PRICE")


def test_unknown_properties_only_in_strict_mode() -> None:
    body = {"modification": {"type": "FIXED_PRICE"}, "offerCriteria": CRITERIA, "extra": 1}
    assert _found(PRICE, body) == []
    assert _found(PRICE, body, strict=True) == ["extra: property not in the spec"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"id": "x", "email": "a@b.pl", "createdAt": "2026-01-01T00:00:00Z"}, []),
        ({"id": None, "email": "a@b.pl", "createdAt": "x"}, ["id: null where the spec has no"]),
        ({"email": "a@b.pl", "createdAt": "x"}, ["id: required property missing"]),
    ],
)
def test_nulls_pass_where_a_property_is_optional_not_where_it_is_required(
    value: dict[str, Any], expected: list[str]
) -> None:
    found = _found({"$ref": "#/components/schemas/AdditionalEmail"}, value, strict=True)
    assert len(found) == len(expected) and all(
        f.startswith(e) for f, e in zip(found, expected, strict=True)
    ), found


def test_types_uuids_and_enums_of_a_checkout_form() -> None:
    form = {
        "id": "not-a-uuid",
        "buyer": {"id": "1", "email": "a@allegromail.pl", "login": "a", "guest": "no"},
        "status": "PAID",
        "lineItems": [],
        "surcharges": [],
        "summary": {"totalToPay": {"amount": "1.00", "currency": "PLN"}},
    }
    found = _found(FORM, form)
    assert "id: 'not-a-uuid' is not a UUID" in found, found
    assert "buyer.guest: expected boolean, got string" in found, found
    assert any(f.startswith("status: 'PAID' is not one of") for f in found), found
