"""PATCH /sale/product-offers/{id}: 202 + operations, 409 on a concurrent edit (section 8.2)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from allegro_sync.emulator.config import Switches

from .conftest import Harness, MakeHarness

EAN_EDIT = {
    "productSet": [{"product": {"parameters": [{"id": "225693", "values": ["5901234123457"]}]}}]
}


async def _offer(emu: Harness, **fields: Any) -> tuple[str, str]:
    seller, token = await emu.seller_with_token()
    offer = await emu.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "A", "stock": 3, **fields}
    )
    return token, str(offer["id"])


async def _operation(emu: Harness, location: str, token: str) -> tuple[int, Any, Any]:
    return await emu.api("GET", urlparse(location).path, token, allow_redirects=False)


async def test_patch_is_accepted_then_done(emu: Harness) -> None:
    token, oid = await _offer(emu)
    status, _, headers = await emu.api("PATCH", f"/sale/product-offers/{oid}", token, EAN_EDIT)
    assert status == 202
    assert int(headers["Retry-After"]) >= 1
    location = headers["Location"]
    assert urlparse(location).path.startswith(f"/sale/product-offers/{oid}/operations/")
    status, op, headers = await _operation(emu, location, token)
    assert status == 202 and op["operation"]["status"] == "IN_PROGRESS"  # the spec: 202
    assert "Retry-After" in headers
    status, err, _ = await emu.api(
        "PATCH", f"/sale/product-offers/{oid}", token, {"name": "Nowa nazwa oferty B"}
    )
    assert status == 409 and err["errors"][0]["code"] == "OfferConflictException"
    await emu.advance(2)
    status, op, headers = await _operation(emu, location, token)
    assert status == 303 and op is None  # no body, the Location is the answer
    assert urlparse(headers["Location"]).path == f"/sale/product-offers/{oid}"
    _, po, _ = await emu.api("GET", f"/sale/product-offers/{oid}", token)
    (param,) = po["productSet"][0]["product"]["parameters"]
    assert param["id"] == "225693" and param["values"] == ["5901234123457"]
    status, _, _ = await emu.api(
        "PATCH", f"/sale/product-offers/{oid}", token, {"name": "Nowa nazwa oferty B"}
    )
    assert status == 202


async def test_processing_delay_is_configurable(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(patch_processing_seconds=30)
    token, oid = await _offer(emu)
    _, _, headers = await emu.api(
        "PATCH", f"/sale/product-offers/{oid}", token, {"name": "Nowa nazwa oferty B"}
    )
    assert headers["Retry-After"] == "30"
    await emu.advance(29)
    assert (await _operation(emu, headers["Location"], token))[0] == 202
    await emu.advance(1)
    assert (await _operation(emu, headers["Location"], token))[0] == 303


async def test_quick_edits_answer_200_when_switched(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(switches=Switches(patch_always_async=False))
    token, oid = await _offer(emu)
    for name in ("Nowa nazwa oferty B", "Nowa nazwa oferty C"):
        status, po, headers = await emu.api(
            "PATCH", f"/sale/product-offers/{oid}", token, {"name": name}
        )
        assert status == 200 and po["name"] == name and "Location" not in headers


async def test_stock_zero_ends_active_offer_asynchronously(emu: Harness) -> None:
    token, oid = await _offer(emu)
    status, po, _ = await emu.api(
        "PATCH", f"/sale/product-offers/{oid}", token, {"stock": {"available": 0}}
    )
    assert status == 202 and po["publication"]["status"] == "ACTIVE"
    await emu.advance(2)
    _, po, _ = await emu.api("GET", f"/sale/product-offers/{oid}", token)
    assert po["stock"]["available"] == 0
    # The reference (8.3, checklist 13): stock reaching 0 ends the offer with EMPTY_STOCK.
    assert (po["publication"]["status"], po["publication"]["endedBy"]) == ("ENDED", "EMPTY_STOCK")
    _, events, _ = await emu.api("GET", "/sale/offer-events?type=OFFER_ENDED", token)
    (ended,) = events["offerEvents"]
    assert ended["offer"]["id"] == oid
    assert ended["offer"]["publication"]["endedBy"] == "EMPTY_STOCK"


async def test_patch_validation(emu: Harness) -> None:
    token, oid = await _offer(emu)
    bad_ean = {"productSet": [{"product": {"id": "123", "idType": "GTIN"}}]}
    status, err, _ = await emu.api("PATCH", f"/sale/product-offers/{oid}", token, bad_ean)
    assert status == 422 and err["errors"][0]["code"] == "NotStandardLengthInGtinParameter"
    status, _, _ = await emu.api(
        "PATCH", f"/sale/product-offers/{oid}", token, {"stock": {"available": -1}}
    )
    assert status == 422
    # A refused edit starts no operation: the next edit is not a conflict.
    status, _, _ = await emu.api(
        "PATCH", f"/sale/product-offers/{oid}", token, {"name": "Nowa nazwa oferty B"}
    )
    assert status == 202


PRODUCT_EDIT = {
    "name": "Kubek ceramiczny biały 300 ml",
    "description": {
        "sections": [
            {"items": [{"type": "TEXT", "content": "<p>Kubek na kawę.</p>"}]},
            {
                "items": [
                    {"type": "IMAGE", "url": "https://img.example/kubek-2.jpg"},
                    {"type": "TEXT", "content": "<p>Do zmywarki.</p>"},
                ]
            },
        ]
    },
    "images": ["https://img.example/kubek-1.jpg", "https://img.example/kubek-2.jpg"],
    "parameters": [{"id": "224017", "values": ["KUB-300"]}, {"name": "Kolor", "values": ["biały"]}],
    "productSet": [
        {
            "product": {
                "id": "5901234123457",
                "idType": "GTIN",
                "parameters": [{"id": "225693", "values": ["5901234123457"]}],
            }
        }
    ],
}


async def test_product_fields_are_taken_and_shown(emu: Harness) -> None:
    token, oid = await _offer(emu, ean="5901234123457")
    status, _, _ = await emu.api("PATCH", f"/sale/product-offers/{oid}", token, PRODUCT_EDIT)
    assert status == 202
    _, po, _ = await emu.api("GET", f"/sale/product-offers/{oid}", token)
    assert po["name"] == PRODUCT_EDIT["name"]
    assert po["description"] == PRODUCT_EDIT["description"]
    assert po["images"] == PRODUCT_EDIT["images"]
    (ean,) = po["productSet"][0]["product"]["parameters"]
    assert (ean["id"], ean["values"]) == ("225693", ["5901234123457"])
    params = {p["id"] or p["name"]: p["values"] for p in po["parameters"]}
    assert params == {"224017": ["KUB-300"], "Kolor": ["biały"]}
    (edit,) = (await emu.control("GET", "/edits"))["edits"]
    assert edit["offer_id"] == oid
    assert edit["fields"] == ["description", "images", "name", "parameters", "productSet"]


async def test_product_fields_are_validated_as_allegro_does(emu: Harness) -> None:
    token, oid = await _offer(emu)
    path = f"/sale/product-offers/{oid}"
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            {"images": [f"https://img.example/{n}.jpg" for n in range(17)]},
            "GallerySizeException",
            "images",
        ),
        ({"images": ["ftp://img.example/1.jpg"]}, "VALIDATION_ERROR", "images[0]"),
        ({"images": ["http://img.example/1.jpg"]}, "OfferImagesNotAvailableException", "images[0]"),
        (
            {"images": ["https://img.example/1.jpg", "https://cdn.shop.invalid/2.jpg"]},
            "OfferImagesNotAvailableException",
            "images[1]",
        ),
        (
            {"description": {"sections": [{"items": []}]}},
            "VALIDATION_ERROR",
            "description.sections[0].items",
        ),
        (
            {"description": {"sections": [{"items": [{"type": "VIDEO", "url": "x"}]}]}},
            "VALIDATION_ERROR",
            "description.sections[0].items[0].type",
        ),
        (
            {"description": {"sections": [{"items": [{"type": "TEXT", "content": "x" * 40_001}]}]}},
            "VALIDATION_ERROR",
            "description",
        ),
        (
            {"productSet": [{"product": {"parameters": [{"values": ["a"]}]}}]},
            "VALIDATION_ERROR",
            "productSet[0].product.parameters[0]",
        ),
        (
            {"productSet": [{"product": {"parameters": [{"id": "224017", "values": []}]}}]},
            "ParameterValidationException",
            "productSet[0].product.parameters[0].values",
        ),
        (
            {"parameters": [{"name": "Kolor"}]},
            "ParameterValidationException",
            "parameters[0].values",
        ),
    ]
    for body, code, where in cases:
        status, err, _ = await emu.api("PATCH", path, token, body)
        assert status == 422, body
        assert (err["errors"][0]["code"], err["errors"][0]["path"]) == (code, where)
    assert (await emu.control("GET", "/edits"))["count"] == 0  # nothing was taken
    _, po, _ = await emu.api("GET", path, token)
    assert po["description"] == {"sections": []}
