"""The emulator instance the handlers share, reachable from every request through an app key."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import bulk
from .clock import Clock
from .config import EmulatorConfig
from .faults import FaultInjector
from .latency import LatencyProfile
from .limits import ChangeBudget, ClientRateLimiter, WriteLimit
from .products import Catalogue
from .state import Marketplace
from .tokens import TokenStore
from .user_limits import MintLimiter, ParallelLimiter


@dataclass
class AuthorizationCode:
    """A one-time authorization code."""

    code: str
    client_id: str
    seller_id: str
    redirect_uri: str | None
    scopes: tuple[str, ...]
    expires_at: float
    code_challenge: str | None
    used: bool = False


@dataclass
class DeviceAuthorization:
    """A pending device-flow authorisation."""

    device_code: str
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    interval: int
    last_poll: float | None = None
    seller_id: str | None = None
    denied: bool = False
    used: bool = False


@dataclass
class Emulator:
    """Everything one emulator instance holds."""

    config: EmulatorConfig
    clock: Clock
    market: Marketplace
    tokens: TokenStore
    limiter: ClientRateLimiter
    budget: ChangeBudget
    faults: FaultInjector
    latency: LatencyProfile
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    devices: dict[str, DeviceAuthorization] = field(default_factory=dict)
    devices_by_user_code: dict[str, DeviceAuthorization] = field(default_factory=dict)
    authorize_as: str | None = None
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    # Only consulted when the matching switch is on (limit > 0).
    parallel: ParallelLimiter = field(default_factory=lambda: ParallelLimiter(0))
    minting: MintLimiter | None = None
    catalogue: Catalogue = field(default_factory=Catalogue)
    # Links of images uploaded through POST /sale/images -> when they expire (timestamp).
    uploaded_images: dict[str, float] = field(default_factory=dict)
    offer_writes: WriteLimit | None = None

    @classmethod
    def build(cls, config: EmulatorConfig) -> Emulator:
        """Wire the parts from a configuration."""
        clock = Clock(config.start_time, frozen=config.frozen_clock)
        market = Marketplace(config, clock)
        return cls(
            config=config,
            clock=clock,
            market=market,
            tokens=TokenStore(market),
            limiter=ClientRateLimiter(
                clock,
                config.rate_limit_per_minute,
                config.block_seconds,
                config.switches.count_requests_while_blocked,
            ),
            budget=ChangeBudget(
                clock,
                {
                    "price": config.price_changes_per_hour,
                    "quantity": config.quantity_changes_per_hour,
                    "publication": config.publication_changes_per_hour,
                },
                config.offer_changes_per_minute,
            ),
            faults=FaultInjector(config.seed),
            latency=LatencyProfile(config.seed, config.latency),
            parallel=ParallelLimiter(config.switches.max_parallel_requests_per_user),
            minting=MintLimiter(
                clock,
                config.switches.max_tokens_per_user,
                config.switches.token_mint_window_seconds,
            ),
            offer_writes=WriteLimit(
                clock, config.offer_writes_per_minute, config.offer_writes_per_hour
            ),
        )

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run background work that the app cancels on shutdown."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def close(self) -> None:
        """Cancel background work; hand bulk-created state back to the collector."""
        bulk.release()
        for task in list(self.background):
            task.cancel()
        if self.background:
            await asyncio.gather(*self.background, return_exceptions=True)


EMULATOR_KEY = web.AppKey("emulator", Emulator)


def get(request: web.Request) -> Emulator:
    """The emulator behind a request."""
    return request.app[EMULATOR_KEY]
