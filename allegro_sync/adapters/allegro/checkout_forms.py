"""Reading checkout forms for many order events at once, in as few requests as possible, and
listing the forms updated in a time window (the order sweep)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import AllegroNotFound, AllegroRejected

LIST_CEILING = 10_000  # Allegro refuses offset + limit above this
LISTING_PAGE = 100
LISTING_MIN_FORMS = 3  # below this, single reads are cheaper than a listing
# events are stamped when they happen and forms when buyers act: allow for the gap
LISTING_MARGIN = timedelta(seconds=2)
# listing pages read at once after the first (which gives the total): against an Allegro that
# takes ~80 ms a call, ten pages one after another cost most of a second
LISTING_WAVE = 4


async def read_checkout_forms(
    allegro: AllegroRestClient,
    account_id: int,
    wanted: Mapping[uuid.UUID, datetime | None],
) -> dict[uuid.UUID, Mapping[str, Any] | Exception | None]:
    """Current forms for many ids of one account, in as few requests as possible.

    Forms changed by buyers come 100 per call from the listing sorted by ``updatedAt``, over the
    time window of the batch's events; forms the listing does not show (changed only by the
    seller, whose changes do not move ``updatedAt``, or changed again since) are read one by one.
    """
    found: dict[uuid.UUID, Mapping[str, Any] | Exception | None] = {}
    times = [t for t in wanted.values() if t is not None]
    if len(wanted) >= LISTING_MIN_FORMS and times:
        # forms whose last buyer action falls in the batch's time window; one changed again
        # since is read singly (its newer event will come anyway)
        params: dict[str, str | int] = {
            "updatedAt.gte": _iso(min(times) - LISTING_MARGIN),
            "updatedAt.lte": _iso(max(times) + LISTING_MARGIN),
            "sort": "updatedAt",
            "limit": LISTING_PAGE,
        }

        async def page(offset: int) -> tuple[int, list[Any]]:
            body = await allegro.get(
                account_id,
                "/order/checkout-forms",
                action="list checkout forms",
                params={**params, "offset": offset},
            )
            forms = list(body.get("checkoutForms") or [])
            for form in forms:
                form_id = uuid.UUID(str(form["id"]))
                if form_id in wanted:
                    found[form_id] = form
            return int(body.get("totalCount") or 0), forms

        total, forms = await page(0)
        offset = LISTING_PAGE
        while len(forms) == LISTING_PAGE:
            missing_count = len(wanted) - len(found)
            pages_left = -(-(total - offset) // LISTING_PAGE)
            room = (LIST_CEILING - offset) // LISTING_PAGE
            # page on only while that costs fewer requests than reading the rest one by one;
            # up to LISTING_WAVE pages at once
            if missing_count == 0 or pages_left >= missing_count:
                break
            wave = min(LISTING_WAVE, pages_left, room)
            if wave <= 0:
                break
            answers = await asyncio.gather(*(page(offset + n * LISTING_PAGE) for n in range(wave)))
            offset += wave * LISTING_PAGE
            total, forms = answers[-1]
    missing = [form_id for form_id in wanted if form_id not in found]
    limit = asyncio.Semaphore(8)

    async def single(form_id: uuid.UUID) -> None:
        async with limit:
            try:
                found[form_id] = await allegro.get(
                    account_id, f"/order/checkout-forms/{form_id}", action="read checkout form"
                )
            except AllegroNotFound:
                found[form_id] = None
            except Exception as exc:
                found[form_id] = exc

    await asyncio.gather(*(single(f) for f in missing))
    return found


@dataclass(frozen=True)
class ListedPage:
    """One answer of the listing: the forms, and when the request was sent (a read is never
    taken for newer than it is)."""

    forms: list[dict[str, Any]]
    read_at: datetime


async def forms_updated_between(
    allegro: AllegroRestClient, account_id: int, since: datetime, until: datetime
) -> AsyncIterator[ListedPage]:
    """Every form whose ``updatedAt`` lies in [since, until], 100 per request, oldest change
    first; one page per request (an empty one included), so the caller counts the requests.

    Paged by ``updatedAt`` rather than by offset: the next page starts at the last form's
    ``updatedAt``, skipping the forms of that very moment already seen, so a form that moves
    out of the window while the pages are read (a buyer acts again) shifts nothing, and the
    10 000-offset ceiling never applies (a form may come twice; the caller dedupes by id).
    """
    gte, skip = since, 0
    while True:
        read_at = datetime.now(UTC)
        body = await allegro.get(
            account_id,
            "/order/checkout-forms",
            action="list checkout forms",
            params={
                "updatedAt.gte": _iso(gte),
                "updatedAt.lte": _iso(until),
                "sort": "updatedAt",
                "limit": LISTING_PAGE,
                "offset": skip,
            },
        )
        forms = list(body.get("checkoutForms") or [])
        yield ListedPage(forms, read_at)
        if len(forms) < LISTING_PAGE:
            return
        last = _parse(forms[-1].get("updatedAt"))
        if last is None or last <= gte:  # a whole page of one moment: page on within it
            skip += len(forms)
        else:
            gte, skip = last, sum(1 for f in forms if _parse(f.get("updatedAt")) == last)
        if skip + LISTING_PAGE > LIST_CEILING:
            raise AllegroRejected(
                f"list checkout forms: over {LIST_CEILING} forms updated at {_iso(gte)}"
            )


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
