"""Health, readiness and metrics endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from allegro_sync.metrics import Metrics

Probe = Callable[[], Awaitable[bool]]


def add_health_routes(app: web.Application, *, probes: dict[str, Probe], metrics: Metrics) -> None:
    """``/healthz`` (the process answers), ``/readyz`` (every dependency answers), ``/metrics``."""

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        async def run(probe: Probe) -> bool:
            try:
                return await asyncio.wait_for(probe(), 2.0)
            except Exception:
                return False

        names = list(probes)
        results = await asyncio.gather(*(run(probes[n]) for n in names))
        checks = {name: ("ok" if ok else "down") for name, ok in zip(names, results, strict=True)}
        ready = all(results)
        return web.json_response(
            {"status": "ready" if ready else "unready", "checks": checks},
            status=200 if ready else 503,
        )

    async def metrics_endpoint(_request: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = metrics.content_type
        return response

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
