"""POST /sale/product-offers, the catalogue (GET /sale/products) and POST /sale/images, read
from allegro-api.md 8.2 and 10 and the spec's SaleProductOfferRequestV1."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from allegro_sync.emulator.config import Switches

from .conftest import Harness, MakeHarness

GTIN = "5901234123457"  # seeded: a phone in category 165
UNKNOWN = "5909990001112"


def body(**over: Any) -> dict[str, Any]:
    """A complete listing of the catalogue product GTIN."""
    base: dict[str, Any] = {
        "productSet": [
            {
                "product": {"id": GTIN, "idType": "GTIN"},
                "responsibleProducer": {"type": "ID", "id": "producer-1"},
                "safetyInformation": {"type": "TEXT", "description": "Trzymać z dala od wody"},
            }
        ],
        "parameters": [{"id": "11323", "valuesIds": ["11323_1"]}],
        "sellingMode": {"format": "BUY_NOW", "price": {"amount": "99.90", "currency": "PLN"}},
        "stock": {"available": 5, "unit": "UNIT"},
        "location": {"city": "Poznań", "countryCode": "PL", "postCode": "60-166"},
        "publication": {"status": "ACTIVE"},
        "external": {"id": "P-1"},
    }
    base.update(over)
    return base


async def test_a_catalogue_product_is_found_by_gtin(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    status, found, _ = await emu.api(
        "GET", "/sale/products", token, params={"phrase": GTIN, "mode": "GTIN"}
    )
    assert status == 200
    (product,) = found["products"]
    assert product["category"]["id"] == "165"
    status, one, _ = await emu.api("GET", f"/sale/products/{product['id']}", token)
    assert status == 200 and one["name"] == product["name"]
    status, none, _ = await emu.api(
        "GET", "/sale/products", token, params={"phrase": UNKNOWN, "mode": "GTIN"}
    )
    assert status == 200 and none["products"] == []
    status, _, _ = await emu.api("GET", "/sale/products/no-such-product", token)
    assert status == 404


async def test_listing_a_catalogue_product_answers_201_and_the_offer_is_live(
    make_emulator: MakeHarness,
) -> None:
    emu = await make_emulator(switches=Switches(create_offer_async=False))
    seller, token = await emu.seller_with_token()
    status, offer, _ = await emu.api("POST", "/sale/product-offers", token, body())
    assert status == 201, offer
    assert offer["publication"]["status"] == "ACTIVE"
    assert offer["category"]["id"] == "165"
    assert offer["external"] == {"id": "P-1"}
    assert offer["afterSalesServices"]["returnPolicy"]["id"] == seller_default(seller, emu)
    status, listing, _ = await emu.api("GET", "/sale/offers", token, params={"external.id": "P-1"})
    assert [o["id"] for o in listing["offers"]] == [offer["id"]]
    _, events, _ = await emu.api("GET", "/sale/offer-events", token)
    assert ("OFFER_ACTIVATED", offer["id"]) in {
        (e["type"], e["offer"]["id"]) for e in events["offerEvents"]
    }


def seller_default(seller: dict[str, Any], emu: Harness) -> str:
    from allegro_sync.emulator.context import EMULATOR_KEY

    state = emu.server.app[EMULATOR_KEY].market.sellers[seller["id"]]
    return str(next(p["id"] for p in state.return_policies if p["name"] == "default"))


async def test_202_then_the_operation_publishes_the_offer(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    status, offer, headers = await emu.api("POST", "/sale/product-offers", token, body())
    assert status == 202, offer
    assert offer["publication"]["status"] == "ACTIVATING"
    location = urlparse(headers["Location"]).path
    assert location.startswith(f"/sale/product-offers/{offer['id']}/operations/")
    status, op, _ = await emu.api("GET", location, token, allow_redirects=False)
    assert status == 202 and op["operation"]["status"] == "IN_PROGRESS"
    await emu.advance(2)
    status, _, headers = await emu.api("GET", location, token, allow_redirects=False)
    assert status == 303
    _, done, _ = await emu.api("GET", f"/sale/product-offers/{offer['id']}", token)
    assert done["publication"]["status"] == "ACTIVE"


async def test_a_draft_stays_inactive(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    status, offer, _ = await emu.api(
        "POST", "/sale/product-offers", token, body(publication={"status": "INACTIVE"})
    )
    assert status == 202
    await emu.advance(2)
    _, done, _ = await emu.api("GET", f"/sale/product-offers/{offer['id']}", token)
    assert done["publication"]["status"] == "INACTIVE"


async def test_every_missing_part_is_named_in_one_422(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    bad = body(parameters=[], location={"city": "Poznań"})
    del bad["productSet"][0]["responsibleProducer"]
    status, err, _ = await emu.api("POST", "/sale/product-offers", token, bad)
    assert status == 422
    codes = {e["code"] for e in err["errors"]}
    assert codes == {
        "MissingRequiredParameters",
        "ResponsibleProducerRequiredException",
        "LocationRequiredException",
    }
    assert any("Stan" in e["message"] for e in err["errors"])


async def test_a_category_that_is_not_a_leaf_is_refused(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    status, err, _ = await emu.api(
        "POST", "/sale/product-offers", token, body(category={"id": "4"})
    )
    assert status == 422 and err["errors"][0]["code"] == "INVALID_CATEGORY_ID"


async def test_an_unknown_gtin_needs_a_proposal(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    unknown = body()
    unknown["productSet"][0]["product"] = {"id": UNKNOWN, "idType": "GTIN"}
    status, err, _ = await emu.api("POST", "/sale/product-offers", token, unknown)
    assert status == 422 and err["errors"][0]["code"] == "ProductNotFoundException"
    unknown["productSet"][0]["product"] = {
        "id": UNKNOWN,
        "idType": "GTIN",
        "name": "Kubek ceramiczny 300 ml",
        "category": {"id": "5501"},
        "parameters": [{"id": "248811", "values": ["Kubix"]}],
        "images": ["https://example.com/kubek.jpg"],
    }
    status, offer, _ = await emu.api(
        "POST", "/sale/product-offers", token, {**unknown, "category": {"id": "5501"}}
    )
    assert status == 202, offer
    assert offer["productSet"][0]["product"]["publication"]["status"] == "PROPOSED"
    status, found, _ = await emu.api(
        "GET", "/sale/products", token, params={"phrase": UNKNOWN, "mode": "GTIN"}
    )
    assert [p["publication"]["status"] for p in found["products"]] == ["PROPOSED"]


async def test_plain_http_images_must_be_uploaded_first(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    status, err, _ = await emu.api(
        "POST", "/sale/product-offers", token, body(images=["http://erp.local/1.jpg"])
    )
    assert status == 422 and err["errors"][0]["code"] == "OfferImagesNotAvailableException"
    status, uploaded, _ = await emu.api(
        "POST", "/sale/images", token, {"url": "http://erp.local/1.jpg"}
    )
    assert status == 201 and uploaded["location"].startswith("https://a.allegroimg.com/")
    status, binary, _ = await emu.api(
        "POST",
        "/sale/images",
        token,
        raw=b"\xff\xd8\xff jpeg",
        headers={"Content-Type": "image/jpeg"},
    )
    assert status == 201
    status, offer, _ = await emu.api(
        "POST",
        "/sale/product-offers",
        token,
        body(images=[uploaded["location"], binary["location"], "https://example.com/2.jpg"]),
    )
    assert status == 202 and len(offer["images"]) == 3


async def test_the_sellers_write_limit_answers_429(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(offer_writes_per_minute=2)
    _, token = await emu.seller_with_token()
    for _ in range(2):
        status, _, _ = await emu.api("POST", "/sale/product-offers", token, body())
        assert status == 202
    status, err, _ = await emu.api("POST", "/sale/product-offers", token, body())
    assert status == 429 and err["errors"][0]["code"] == "RateLimitExceedException"  # as any 429
    await emu.advance(61)
    status, _, _ = await emu.api("POST", "/sale/product-offers", token, body())
    assert status == 202


IMAGE_CASES: list[tuple[Any, str, str]] = [
    ("https://img.example/1.jpg", "VALIDATION_ERROR", "images"),  # not a list
    ([f"https://img.example/{n}.jpg" for n in range(17)], "GallerySizeException", "images"),
    (["ftp://img.example/1.jpg"], "VALIDATION_ERROR", "images[0]"),
    (["https:///no-host.jpg"], "VALIDATION_ERROR", "images[0]"),
    (["http://img.example/1.jpg"], "OfferImagesNotAvailableException", "images[0]"),
    (
        ["https://img.example/1.jpg", "https://cdn.shop.invalid/2.jpg"],
        "OfferImagesNotAvailableException",
        "images[1]",
    ),
]


async def test_post_and_patch_refuse_the_same_images_the_same_way(emu: Harness) -> None:
    seller, token = await emu.seller_with_token()
    offer = await emu.control("POST", f"/sellers/{seller['id']}/offers", {"name": "A", "stock": 3})
    for images, code, path in IMAGE_CASES:
        status, posted, _ = await emu.api(
            "POST", "/sale/product-offers", token, body(images=images)
        )
        assert status == 422, (images, posted)
        assert (posted["errors"][0]["code"], posted["errors"][0]["path"]) == (code, path), images
        status, patched, _ = await emu.api(
            "PATCH", f"/sale/product-offers/{offer['id']}", token, {"images": images}
        )
        assert status == 422, (images, patched)
        assert (patched["errors"][0]["code"], patched["errors"][0]["path"]) == (code, path)
        assert patched["errors"][0]["message"] == posted["errors"][0]["message"]
    # an image of the description is checked as one of the gallery, in both
    description = {"sections": [{"items": [{"type": "IMAGE", "url": "http://erp.local/d.jpg"}]}]}
    path = "description.sections[0].items[0].url[0]"
    status, posted, _ = await emu.api(
        "POST", "/sale/product-offers", token, body(description=description)
    )
    assert status == 422 and posted["errors"][0]["path"] == path, posted
    status, patched, _ = await emu.api(
        "PATCH", f"/sale/product-offers/{offer['id']}", token, {"description": description}
    )
    assert status == 422 and patched["errors"][0]["path"] == path, patched
    # what Allegro can take passes both
    fine = ["https://img.example/1.jpg", "http://a.allegroimg.com/original/1.jpg"]
    status, created, _ = await emu.api("POST", "/sale/product-offers", token, body(images=fine))
    assert status in (201, 202), created
    status, _, _ = await emu.api(
        "PATCH", f"/sale/product-offers/{offer['id']}", token, {"images": fine}
    )
    assert status in (200, 202)
