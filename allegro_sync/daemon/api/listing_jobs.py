"""``/offers/listing-jobs``: list every product with an EAN and no offer on an account, as a
job whose progress can be read (issue 17 item 3; ``handlers/listing_jobs.py``).

``POST`` starts a job (202) or, with ``dry_run``, says what it would do and changes nothing.
``GET /offers/listing-jobs/{id}`` is its progress and its latest refusals and skips;
``POST /offers/listing-jobs/{id}/cancel`` fails what the job has not sent to Allegro yet.
"""

from __future__ import annotations

from typing import Annotated

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from allegro_sync.adapters.postgres import listing_jobs as store
from allegro_sync.daemon.api.errors import ApiError
from allegro_sync.daemon.api.params import int_param, invalid, json_body, path_id
from allegro_sync.handlers.listing_jobs import JobError, cancel_job, dry_run, job_json, start_job


class ListingJobRequest(BaseModel):
    """What ``POST /offers/listing-jobs`` accepts."""

    model_config = ConfigDict(extra="forbid")
    account_id: Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
    publish: StrictBool = True
    dry_run: StrictBool = False


def parse_job_request(body: object) -> ListingJobRequest:
    """Validate the body; a 422 naming the field."""
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object")
    try:
        return ListingJobRequest.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "body"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        raise invalid(field, message) from None


def add_listing_job_routes(app: web.Application, pool: asyncpg.Pool) -> None:
    """``POST``/``GET /offers/listing-jobs``, ``GET /offers/listing-jobs/{id}``."""

    async def create(request: web.Request) -> web.Response:
        given = parse_job_request(await json_body(request))
        try:
            if given.dry_run:
                found = await dry_run(pool, given.account_id, publish=given.publish)
                return web.json_response(found)
            job = await start_job(pool, given.account_id, publish=given.publish)
        except JobError as exc:
            error = "not_found" if exc.status == 404 else "account_inactive"
            raise ApiError(exc.status, error, exc.detail) from None
        return web.json_response(job_json(job), status=202)

    async def list_all(request: web.Request) -> web.Response:
        account_id = int_param(request, "account_id", low=1)
        limit = int_param(request, "limit", 20, low=1, high=100)
        assert limit is not None
        rows = await store.list_jobs(pool, account_id, limit)
        return web.json_response({"items": [job_json(r) for r in rows]})

    async def read(request: web.Request) -> web.Response:
        job_id = path_id(request)
        job = await store.get(pool, job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no listing job {job_id}")
        return web.json_response(job_json(job, await store.failures(pool, job_id)))

    app.router.add_post("/offers/listing-jobs", create)
    app.router.add_get("/offers/listing-jobs", list_all)

    async def cancel(request: web.Request) -> web.Response:
        job_id = path_id(request)
        job = await cancel_job(pool, job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no listing job {job_id}")
        return web.json_response(job_json(job, await store.failures(pool, job_id)))

    app.router.add_get("/offers/listing-jobs/{id}", read)
    app.router.add_post("/offers/listing-jobs/{id}/cancel", cancel)
