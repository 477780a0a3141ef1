"""Scale: 100 000 offers listed in 100 pages of 1000, and request counts for benchmarks."""

from __future__ import annotations

import time

from .conftest import Harness

N = 100_000


async def test_list_100k_offers(emu: Harness) -> None:
    started = time.monotonic()
    seller, token = await emu.seller_with_token()
    created = await emu.control(
        "POST",
        f"/sellers/{seller['id']}/offers",
        {"count": N, "name": "Item {n}", "external_id": "SKU-{n}", "ean_base": "5900000000000"},
    )
    assert created["count"] == N
    await emu.control("DELETE", "/requests")
    seen: set[str] = set()
    pages = 0
    for offset in range(0, N, 1000):
        status, body, _ = await emu.api("GET", f"/sale/offers?limit=1000&offset={offset}", token)
        assert status == 200 and body["count"] == 1000 and body["totalCount"] == N
        seen.update(o["id"] for o in body["offers"])
        pages += 1
    assert pages == 100 and len(seen) == N and seen == set(created["ids"])
    counts = await emu.control("GET", "/requests")
    assert counts["by_path"] == {"GET /sale/offers": 100}
    assert counts["total"] == 100
    assert time.monotonic() - started < 30  # a generous bound for slow CI machines
