"""The composition root: builds every adapter from Settings and runs the daemon's parts.

Nothing else in the code base constructs pools, connections or clients; everything receives what
it needs from here.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

import aiohttp
import asyncpg
import structlog
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.crypto import TokenCipher
from allegro_sync.adapters.allegro.journal import Journal
from allegro_sync.adapters.allegro.limits import (
    BucketStore,
    ChangeBudgets,
    Replicas,
    RequestLimiter,
)
from allegro_sync.adapters.allegro.oauth import OAuthClient
from allegro_sync.adapters.allegro.offer_journal import OfferJournal
from allegro_sync.adapters.allegro.order_journal import OrderJournal
from allegro_sync.adapters.allegro.tokens import TokenManager
from allegro_sync.adapters.broker import connection as broker
from allegro_sync.adapters.broker.publisher import ConfirmingPublisher
from allegro_sync.adapters.broker.signing import MessageSigner
from allegro_sync.adapters.broker.topology import (
    ERP_INVOICE_QUEUE,
    ERP_QUEUE,
    JOURNAL_QUEUE,
    declare_topology,
)
from allegro_sync.adapters.mail.smtp import SmtpMailer, parse_smtp_url
from allegro_sync.adapters.postgres import migrations
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.adapters.postgres.event_log import Category
from allegro_sync.adapters.postgres.rate_buckets import PgBucketStore
from allegro_sync.config.settings import Settings
from allegro_sync.config.user_agent import default_user_agent
from allegro_sync.contract import INVOICE_ADDED
from allegro_sync.daemon import replicas
from allegro_sync.daemon.api.accounts import AccountDeps, add_account_routes
from allegro_sync.daemon.api.auth import bearer_auth
from allegro_sync.daemon.api.customers import ExportGate, add_customer_routes
from allegro_sync.daemon.api.errors import json_errors
from allegro_sync.daemon.api.health import add_health_routes
from allegro_sync.daemon.api.listing_jobs import add_listing_job_routes
from allegro_sync.daemon.api.offers import add_offer_routes
from allegro_sync.daemon.api.openapi import add_openapi_route
from allegro_sync.daemon.api.orders import add_order_routes
from allegro_sync.daemon.api.params import no_nul_in_query
from allegro_sync.daemon.api.parcels import add_parcel_routes
from allegro_sync.daemon.api.shipments import add_shipment_routes
from allegro_sync.daemon.consumer import BatchConsumer
from allegro_sync.daemon.listing_service import ListingService
from allegro_sync.daemon.mail_relay import MailRelay
from allegro_sync.daemon.offer_change_batcher import OfferChangeBatcher
from allegro_sync.daemon.offer_updater import OfferUpdater
from allegro_sync.daemon.order_sweeper import OrderSweeper
from allegro_sync.daemon.outbox_relay import OutboxRelay
from allegro_sync.daemon.panel import PREFIX as PANEL_PREFIX
from allegro_sync.daemon.panel import PanelDeps, create_panel_app, new_auth
from allegro_sync.daemon.parcel_service import ParcelService
from allegro_sync.daemon.pollers import Clock, PollerSettings, PollerSupervisor
from allegro_sync.daemon.reconciler import Reconciler
from allegro_sync.daemon.renewal_service import RenewalService
from allegro_sync.daemon.retention import RetentionService, retention_rules
from allegro_sync.daemon.runtime import tune_garbage_collector
from allegro_sync.daemon.sent_marker import SentMarker
from allegro_sync.daemon.shipment_tracker import ShipmentTracker
from allegro_sync.daemon.token_refresher import TokenRefresher
from allegro_sync.handlers import accounts
from allegro_sync.handlers.fulfillment import echo_candidates
from allegro_sync.handlers.listing import ListingDeps
from allegro_sync.handlers.offers import make_gap_recovery
from allegro_sync.handlers.orders import make_backfill
from allegro_sync.handlers.parcels import RetryBounds
from allegro_sync.handlers.registry import build_routes
from allegro_sync.handlers.shipment_tracking import TrackingTiming
from allegro_sync.handlers.shipments import SentStepBounds
from allegro_sync.metrics import Metrics

log = structlog.get_logger(__name__)

# The journal's runs are the pollers' own (100 events with their checkout forms, some hundred
# kilobytes); a body past this is no run of ours.
JOURNAL_MESSAGE_MAX_BYTES = 16 * 1024 * 1024
# Seconds past SHUTDOWN_TIMEOUT the parts of the daemon get to stop before they are left behind.
STOP_GRACE = 5.0
CLOSE_TIMEOUT = 5.0  # seconds after that for the connections (HTTP, broker, limits, pools)
MIN_STEP = 0.25  # seconds a step gets even when those before it used up the time
WATCHDOG_MARGIN = 5.0  # seconds past stop_bound before the process ends itself (exit code 1)


class Service(Protocol):
    """A long-running part of the daemon."""

    async def start(self) -> None: ...

    async def stop(self, timeout: float) -> None: ...


def new_http_session(user_agent: str | None = None) -> aiohttp.ClientSession:
    """The one HTTP client session of a process; every request carries ``USER_AGENT``."""
    return aiohttp.ClientSession(headers={"User-Agent": user_agent or default_user_agent()})


@dataclass(frozen=True)
class AllegroStack:
    """The Allegro client stack: OAuth per environment, token manager, REST client."""

    cipher: TokenCipher
    oauth: Callable[[bool], OAuthClient]
    tokens: TokenManager
    allegro: AllegroRestClient
    limiter: RequestLimiter | None


def build_allegro_stack(
    settings: Settings,
    pool: asyncpg.Pool,
    session: aiohttp.ClientSession,
    metrics: Metrics,
    limits: BucketStore | None = None,
    replica_count: Replicas = lambda: 1,
) -> AllegroStack:
    """Wire OAuth, tokens and the REST client; dead credentials and refusals go to the log.
    ``limits``: the client id's request budget shared with the other replicas (None: this
    process keeps to ``ALLEGRO_REQUESTS_PER_MINUTE`` alone, as a one-off command does);
    ``replica_count``: how many share it, for the local fallback."""
    cipher = TokenCipher(*settings.secret_keys())

    def oauth(sandbox: bool) -> OAuthClient:
        client_id, client_secret = settings.client_credentials(sandbox)
        return OAuthClient(session, settings.auth_url(sandbox), client_id, client_secret)

    async def on_credentials_dead(account_id: int, reason: str) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await accounts.disable_account(conn, account_id, reason)

    async def on_forbidden(
        account_id: int, category: str, action: str, message: str, trace_id: str | None
    ) -> None:
        async with pool.acquire() as conn:
            await accounts.record_refusal(
                conn, account_id, cast(Category, category), action, message, trace_id
            )

    tokens = TokenManager(
        pool=pool, cipher=cipher, oauth=oauth, on_credentials_dead=on_credentials_dead
    )
    allegro = AllegroRestClient(
        session=session,
        tokens=tokens,
        api_url=settings.api_url,
        metrics=metrics,
        on_forbidden=on_forbidden,
        limiter=request_limiter(settings, limits, replica_count),
    )
    return AllegroStack(cipher, oauth, tokens, allegro, allegro.limiter)


def client_budget(settings: Settings) -> int:
    """The requests a minute this replica may send at most: the client id's, or its own cap
    if lower."""
    return min(settings.client_requests_per_minute, settings.allegro_requests_per_minute)


def request_limiter(
    settings: Settings, limits: BucketStore | None, replica_count: Replicas = lambda: 1
) -> RequestLimiter:
    """The client-wide request budget: shared through ``limits``, capped by this replica's
    own setting; without ``limits`` the cap alone. The fallback share is divided between the
    ``replica_count`` replicas."""
    if limits is None:
        return RequestLimiter(client_budget(settings))
    return RequestLimiter(
        settings.client_requests_per_minute,
        store=limits,
        cap_per_minute=settings.allegro_requests_per_minute,
        fallback_share=settings.limits_fallback_share,
        replicas=replica_count,
    )


def change_budgets(
    settings: Settings, limits: BucketStore | None, replica_count: Replicas = lambda: 1
) -> ChangeBudgets:
    """The sellers' offer-change budgets, shared through ``limits``, capped by this replica's
    ``OFFER_CHANGE_BUDGET_SHARE``; the fallback share divided between the replicas."""
    return ChangeBudgets(
        share=settings.offer_change_budget_share,
        store=limits,
        fallback_share=settings.limits_fallback_share,
        replicas=replica_count,
    )


def poller_settings(settings: Settings) -> PollerSettings:
    """The journal scheduler's timing and idle budget (of all the replicas together: each
    takes the part of the shards it holds) from the settings."""
    return PollerSettings(
        ceilings={"order": settings.order_poll_ceiling, "offer": settings.offer_poll_ceiling},
        idle_budget_per_minute=settings.idle_poll_budget_share * client_budget(settings),
    )


def shipment_tracker(
    settings: Settings,
    *,
    dsn: str,
    pool: asyncpg.Pool,
    allegro: AllegroRestClient,
    metrics: Metrics,
) -> ShipmentTracker:
    """The delivery-status reads (one replica), inside ``TRACKING_BUDGET_SHARE`` of the
    requests this replica may send (``client_budget``)."""
    return ShipmentTracker(
        dsn=dsn,
        pool=pool,
        allegro=allegro,
        metrics=metrics,
        requests_per_minute=client_budget(settings),
        budget_share=settings.tracking_budget_share,
        timing=TrackingTiming(
            interval=settings.tracking_interval,
            give_up=settings.tracking_give_up_days * 86400.0,
            retry_after=min(300.0, settings.tracking_interval),
        ),
        tick=settings.tracking_tick,
    )


@dataclass
class Daemon:
    """The running daemon's parts, in start order."""

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    pool: asyncpg.Pool | None = None
    # the admin API's and the panel's own, small, with timeouts (issue 14)
    http_pool: asyncpg.Pool | None = None
    amqp: AbstractRobustConnection | None = None
    services: list[Service] = field(default_factory=list)
    http_runner: web.AppRunner | None = None
    http_session: aiohttp.ClientSession | None = None
    allegro: AllegroRestClient | None = None
    tokens: TokenManager | None = None
    cipher: TokenCipher | None = None
    oauth: Callable[[bool], OAuthClient] | None = None
    poller_timing: PollerSettings | None = None  # None: from the settings (poller_settings)
    poller_clock: Clock = time.monotonic  # the scheduler's clock (a test moves it with Allegro's)
    instance: str = field(default_factory=replicas.instance_name)
    # Allegro's limits shared with the other replicas (rate_buckets), closed last
    limits: PgBucketStore | None = None
    limiter: RequestLimiter | None = None
    budgets: ChangeBudgets | None = None
    # the daemons on the database as the pollers last counted them (the limits' fallback)
    replica_count: replicas.ReplicaCount = field(default_factory=replicas.ReplicaCount)

    async def start(self) -> None:
        """Migrate, declare the topology, then start HTTP, the relay and the consumers."""
        settings = self.settings
        dsn = settings.database_url
        applied = await migrations.migrate(dsn)
        if applied:
            log.info("database_migrated", applied=applied)
        self.pool = await pg.create_pool(dsn, application_name=self.instance)
        self.http_pool = await pg.create_pool(
            dsn,
            min_size=1,
            max_size=settings.http_db_pool_size,
            application_name=self.instance,
            statement_timeout=settings.http_statement_timeout,
            idle_in_transaction_timeout=settings.http_idle_in_transaction_timeout,
        )
        self.limits = PgBucketStore(dsn, application_name=self.instance)
        self.amqp = await broker.connect(settings.amqp_url)
        channel = await self.amqp.channel()
        await declare_topology(channel)
        await channel.close()

        self._build_allegro()
        assert self.tokens is not None
        self.services.append(TokenRefresher(pool=self.pool, tokens=self.tokens))

        assert self.allegro is not None
        # Journal messages are taken only from this installation: every publisher signs them
        # and the journal consumer verifies (adapters/broker/signing.py).
        signer = MessageSigner(settings.secret_keys())
        relay_publisher = await ConfirmingPublisher.open(self.amqp, signer)
        self.services.append(
            OutboxRelay(dsn=dsn, pool=self.pool, publisher=relay_publisher, metrics=self.metrics)
        )
        journal_publisher = await ConfirmingPublisher.open(self.amqp, signer)
        journals: list[Journal] = [
            OrderJournal(
                self.allegro,
                backfill=make_backfill(self.allegro, self.pool, journal_publisher),
                echoes=functools.partial(echo_candidates, self.pool),
            ),
            OfferJournal(self.allegro, recover=make_gap_recovery(self.allegro)),
        ]
        self.services.append(
            PollerSupervisor(
                journals=journals,
                dsn=dsn,
                pool=self.pool,
                publisher=journal_publisher,
                metrics=self.metrics,
                timing=self.poller_timing or poller_settings(settings),
                instance=self.instance,
                replica_count=self.replica_count,
                clock=self.poller_clock,
            )
        )
        self.services.append(
            RenewalService(dsn=dsn, pool=self.pool, sweep_interval=settings.renewal_sweep_interval)
        )
        self.services.append(
            Reconciler(dsn=dsn, metrics=self.metrics, interval=settings.reconcile_interval)
        )
        self.services.append(
            OrderSweeper(
                dsn=dsn,
                pool=self.pool,
                allegro=self.allegro,
                publisher=journal_publisher,
                metrics=self.metrics,
                interval=settings.order_sweep_interval,
                lag=settings.order_sweep_lag,
            )
        )
        self.services.append(
            RetentionService(
                dsn=dsn,
                pool=self.pool,
                metrics=self.metrics,
                rules=retention_rules(
                    inbox_days=settings.inbox_retention_days,
                    event_log_days=settings.event_log_retention_days,
                    mail_days=settings.mail_outbox_retention_days,
                    command_days=settings.offer_command_retention_days,
                ),
                interval=settings.retention_interval,
                batch=settings.retention_batch_size,
            )
        )
        self.services.append(
            SentMarker(
                pool=self.pool,
                allegro=self.allegro,
                metrics=self.metrics,
                bounds=SentStepBounds(
                    max_attempts=settings.sent_step_max_attempts,
                    give_up_after=settings.sent_step_give_up_after,
                ),
            )
        )
        self.services.append(
            shipment_tracker(
                settings, dsn=dsn, pool=self.pool, allegro=self.allegro, metrics=self.metrics
            )
        )
        self.services.append(
            MailRelay(
                pool=self.pool,
                mailer=SmtpMailer(parse_smtp_url(settings.smtp_url)),
                mail_from=settings.mail_from,
            )
        )
        self.services.append(
            ParcelService(
                dsn=dsn,
                pool=self.pool,
                allegro=self.allegro,
                bounds=RetryBounds(
                    max_failures=settings.parcel_max_failures,
                    give_up_after=settings.parcel_give_up_after,
                ),
            )
        )
        consumers = {
            queue_name: BatchConsumer(
                connection=self.amqp,
                pool=self.pool,
                queue_name=queue_name,
                routes=routes,
                metrics=self.metrics,
                prefetch=settings.invoice_consumer_prefetch
                if queue_name == ERP_INVOICE_QUEUE
                else settings.consumer_prefetch,
                batch_size=settings.consumer_batch_size,
                signer=signer,
                verify=queue_name == JOURNAL_QUEUE,
                max_message_bytes=JOURNAL_MESSAGE_MAX_BYTES
                if queue_name == JOURNAL_QUEUE
                else settings.max_message_bytes,
                max_bytes_by_key={INVOICE_ADDED: settings.max_invoice_message_bytes},
            )
            for queue_name, routes in build_routes(self.allegro, self.pool).items()
        }
        assert self.budgets is not None
        # one budget per seller and kind for every writer (the batcher's commands, listings, edits)
        self.services.append(
            ListingService(dsn=dsn, deps=ListingDeps(self.allegro, self.pool, self.budgets))
        )
        self.services.append(
            OfferUpdater(dsn=dsn, pool=self.pool, allegro=self.allegro, budgets=self.budgets)
        )
        self.services.append(
            OfferChangeBatcher(
                dsn=dsn,
                pool=self.pool,
                allegro=self.allegro,
                budgets=self.budgets,
                window=settings.offer_batch_window,
                halt_after_persist=settings.offer_batcher_halt_after_persist,
                intake_busy=consumers[ERP_QUEUE].backlogged,
                intake_deep=consumers[ERP_QUEUE].deeply_backlogged,
                max_hold=settings.offer_batch_max_hold,
                concurrency=settings.offer_commands_in_flight,
            )
        )
        self.services.extend(consumers.values())  # last: messages flow once all else runs
        for service in self.services:
            await service.start()
        # HTTP last: once /healthz answers, every part of the daemon is running.
        await self._start_http()
        log.info("daemon_started", http=f"http://{settings.http_host}:{settings.http_port}")

    def _build_allegro(self) -> None:
        assert self.pool is not None
        self.http_session = new_http_session(self.settings.user_agent)
        stack = build_allegro_stack(
            self.settings,
            self.pool,
            self.http_session,
            self.metrics,
            self.limits,
            self.replica_count,
        )
        self.limiter = stack.limiter
        self.budgets = change_budgets(self.settings, self.limits, self.replica_count)
        self.cipher, self.oauth, self.tokens, self.allegro = (
            stack.cipher,
            stack.oauth,
            stack.tokens,
            stack.allegro,
        )

    async def _start_http(self) -> None:
        settings = self.settings
        app = web.Application(
            middlewares=[
                json_errors,
                bearer_auth(settings.admin_token.get_secret_value()),
                no_nul_in_query,
            ]
        )
        add_health_routes(
            app,
            probes={"postgres": self._postgres_ready, "rabbitmq": self._rabbitmq_ready},
            metrics=self.metrics,
        )
        assert self.http_pool is not None and self.tokens is not None and self.allegro is not None
        assert self.cipher is not None and self.oauth is not None
        exports = ExportGate(
            limit=settings.export_max_concurrent,
            statement_timeout=settings.export_statement_timeout,
            stall_timeout=settings.http_idle_in_transaction_timeout,
        )
        add_account_routes(
            app,
            AccountDeps(
                pool=self.http_pool,
                cipher=self.cipher,
                oauth=self.oauth,
                tokens=self.tokens,
                allegro=self.allegro,
                public_url=str(settings.public_url),
            ),
        )
        add_customer_routes(app, self.http_pool, exports)
        add_offer_routes(app, self.http_pool)
        add_listing_job_routes(app, self.http_pool)
        add_order_routes(app, self.http_pool)
        add_shipment_routes(app, self.http_pool)
        add_parcel_routes(app, self.http_pool, self.allegro)
        add_openapi_route(app)
        app.add_subapp(PANEL_PREFIX, create_panel_app(self._panel_deps(exports)))
        self.http_runner = web.AppRunner(app, access_log=None)
        await self.http_runner.setup()
        site = web.TCPSite(self.http_runner, settings.http_host, settings.http_port)
        await site.start()

    def _panel_deps(self, exports: ExportGate) -> PanelDeps:
        settings = self.settings
        assert self.http_pool is not None and self.tokens is not None and self.allegro is not None
        assert self.cipher is not None and self.oauth is not None
        auth = new_auth(
            self.http_pool,
            password=settings.panel_secret(),
            secret_key=settings.secret_key.get_secret_value(),
            session_hours=settings.panel_session_hours,
            public_url=str(settings.public_url),
        )
        return PanelDeps(
            pool=self.http_pool,
            cipher=self.cipher,
            oauth=self.oauth,
            tokens=self.tokens,
            allegro=self.allegro,
            public_url=str(settings.public_url),
            auth=auth,
            exports=exports,
        )

    async def _postgres_ready(self) -> bool:
        assert self.pool is not None
        return await pg.ping(self.pool)

    async def _rabbitmq_ready(self) -> bool:
        assert self.amqp is not None
        if self.amqp.is_closed or not self.amqp.connected.is_set():
            return False
        channel = await self.amqp.channel()
        await channel.close()
        return True

    async def stop(self) -> None:
        """Stop intake first, drain in-flight work within the timeout, then close everything;
        returns within ``stop_bound`` seconds whatever hangs (module constants)."""
        loop = asyncio.get_running_loop()
        timeout = self.settings.shutdown_timeout
        drained = loop.time() + timeout  # work in hand finishes by then or is cancelled
        stopped = drained + STOP_GRACE  # every service has stopped by then or is left behind
        # Every step is bounded: a part that does not stop in time is named in the log and left
        # behind, so the process still exits (a supervisor's SIGKILL is the only other way out).
        for service in reversed(self.services):
            name = type(service).__name__
            budget = max(stopped - loop.time(), MIN_STEP)
            try:
                await asyncio.wait_for(service.stop(max(drained - loop.time(), 0.0)), budget)
            except TimeoutError:
                log.error("service_stop_timed_out", service=name, seconds=round(budget, 1))
            except Exception:
                log.exception("service_stop_failed", service=name)
        closed = max(loop.time(), stopped) + CLOSE_TIMEOUT
        if self.http_runner is not None:
            await self._closing("http", self.http_runner.cleanup(), closed)
        if self.http_session is not None:  # requests still hanging on Allegro are cut
            await self._closing("http_session", self.http_session.close(), closed)
        if self.amqp is not None:
            await self._closing("rabbitmq", self.amqp.close(), closed)
        for name, limits in (
            ("limiter", self.limiter),
            ("budgets", self.budgets),
            ("limits", self.limits),
        ):
            if limits is not None:  # unspent leases back to the shared buckets, then its pool
                await self._closing(name, limits.close(), closed)
        for name, pool in (("http_pool", self.http_pool), ("pool", self.pool)):
            if pool is not None and not await self._closing(name, pool.close(), closed):
                pool.terminate()  # connections still held by a task left behind: cut
        log.info("daemon_stopped")

    async def _closing(self, name: str, closing: Awaitable[object], deadline: float) -> bool:
        """One close step within what is left of ``deadline`` (at least ``MIN_STEP``); False,
        logged, when it ran out of time or failed."""
        budget = max(deadline - asyncio.get_running_loop().time(), MIN_STEP)
        try:
            await asyncio.wait_for(closing, budget)
        except TimeoutError:
            log.error("close_timed_out", part=name, seconds=round(budget, 1))
            return False
        except Exception as exc:
            log.warning("close_failed", part=name, error=f"{type(exc).__name__}: {exc}")
            return False
        return True


def stop_bound(settings: Settings) -> float:
    """Seconds ``Daemon.stop`` takes at most: ``SHUTDOWN_TIMEOUT`` for the work in hand, then
    ``STOP_GRACE`` for the services to unwind and ``CLOSE_TIMEOUT`` for the connections (each
    step given at least ``MIN_STEP``, which a stop only uses when everything before overran)."""
    return settings.shutdown_timeout + STOP_GRACE + CLOSE_TIMEOUT


def exit_watchdog(seconds: float) -> threading.Timer:
    """A thread that ends the process with exit code 1 when it still runs ``seconds`` from now:
    whatever hangs (a task that ignores its cancellation, the event loop blocked, a thread of
    the resolver), SIGTERM ends the process in bounded time."""

    def overran() -> None:
        log.error("shutdown_overran", seconds=seconds)
        os._exit(1)

    timer = threading.Timer(seconds, overran)
    timer.daemon = True  # an exit in time is not held up by it
    timer.start()
    return timer


async def run_daemon(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT, then shut down cleanly; the exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(settings)
    try:
        await daemon.start()
        tune_garbage_collector()
        await stop.wait()
        log.info("daemon_stopping", bound_seconds=stop_bound(settings))
    finally:
        # from here the process ends in bounded time, whatever the stop or the loop's own
        # teardown (its tasks cancelled and awaited by asyncio.run) runs into
        exit_watchdog(stop_bound(settings) + WATCHDOG_MARGIN)
        await daemon.stop()
    return 0
