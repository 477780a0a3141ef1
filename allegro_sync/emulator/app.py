"""The aiohttp application: REST API, OAuth endpoints and the control API in one process."""

from __future__ import annotations

from aiohttp import web

from . import (
    account,
    commands,
    control,
    images,
    invoices,
    listing,
    messaging,
    oauth,
    offers,
    orders,
    parcels,
    product_offers,
    products,
    shipments,
    tracking,
)
from .config import ClientRegistration, EmulatorConfig, Switches
from .context import EMULATOR_KEY, Emulator
from .middleware import faults_and_counting, trace_and_errors

__all__ = ["ClientRegistration", "EmulatorConfig", "Switches", "create_app"]

# Larger than the 3 MB invoice limit, so the emulator itself answers 413 as Allegro does.
MAX_BODY = 16 * 1024 * 1024


def create_app(config: EmulatorConfig | None = None) -> web.Application:
    """Build an emulator. ``app[EMULATOR_KEY]`` gives in-process access to its state."""
    emulator = Emulator.build(config or EmulatorConfig())
    app = web.Application(
        middlewares=[trace_and_errors, faults_and_counting], client_max_size=MAX_BODY
    )
    app[EMULATOR_KEY] = emulator
    for module in (
        oauth,
        account,
        orders,
        invoices,
        shipments,
        parcels,
        tracking,
        messaging,
        offers,
        product_offers,
        listing,
        products,
        images,
        commands,
        control,
    ):
        app.add_routes(module.routes())

    async def close(_: web.Application) -> None:
        await emulator.close()

    app.on_cleanup.append(close)
    return app
